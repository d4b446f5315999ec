"""A small, real RunPod Serverless worker: a deterministic extractive text summariser.

It stands in for a GPU model in gpushield's demo and tests. It is genuine in the ways that matter
to the gate: it runs under RunPod's own worker runtime (`runpod.serverless.start`), takes the
usual text-generation knobs (`prompt`, `max_tokens`, `temperature`), returns a result whose size
depends on the input, and fails like a real handler (an exception becomes RunPod's FAILED answer
with a traceback the gate must scrub).

Run locally (RunPod's own development server, no GPU or account needed):

    python handler.py --rp_serve_api --rp_api_host 127.0.0.1 --rp_api_port 8000

Test hooks (`sleep_ms` to simulate slow GPU work, `fail` to raise) are honoured only when
`GPUSHIELD_WORKER_TEST_HOOKS=1`, so a deployed worker cannot be made to sleep or crash by a
caller. If `GPUSHIELD_WORKER_RUNLOG` names a file, one line per job (job id and time, never the
prompt) is appended to it, so tests can count how many times the "GPU" really ran.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import re
import time
from collections import Counter
from typing import Any

MODEL_NAME = "gpushield-demo-summariser"
MAX_PROMPT_CHARS = 32_000
MAX_TOKENS_LIMIT = 512
MAX_SLEEP_MS = 600_000

_TOKEN_RE = re.compile(r"\w+(?:'\w+)?|[^\w\s]", re.UNICODE)
_WORD_RE = re.compile(r"\w+(?:'\w+)?", re.UNICODE)
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
# Function words carry no topic; leaving them out makes the frequency summary informative.
_STOPWORDS_TEXT = (
    "a an and are as at be but by for from has have he her his i in is it its of on or our "
    "she that the their them they this to was we were what when which who will with you your"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


class InputError(ValueError):
    """The job's input is not acceptable; reported to the caller as a handler error."""


def _hooks_enabled() -> bool:
    return os.environ.get("GPUSHIELD_WORKER_TEST_HOOKS") == "1"


def _record_run(job_id: str) -> None:
    """Appends one line per job so tests can count real backend runs (never the prompt)."""
    path = os.environ.get("GPUSHIELD_WORKER_RUNLOG")
    if not path:
        return
    # One write of one short line in append mode: concurrent jobs never interleave mid-line.
    with open(path, "a", encoding="utf-8") as log:
        log.write(f"{job_id}\t{time.time():.6f}\n")


def tokenize(text: str) -> list[str]:
    """Words (with inner apostrophes) and single punctuation marks, like a simple word-level
    tokenizer; `len(tokenize(text))` is what the worker reports as the prompt's token count."""
    return _TOKEN_RE.findall(text)


def _parse_input(raw: Any) -> tuple[str, int, float]:
    if not isinstance(raw, dict):
        raise InputError("input must be an object")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"prompt longer than {MAX_PROMPT_CHARS} characters")
    max_tokens = raw.get("max_tokens", 64)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InputError("max_tokens must be an integer")
    if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise InputError(f"max_tokens must be between 1 and {MAX_TOKENS_LIMIT}")
    temperature = raw.get("temperature", 0.0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise InputError("temperature must be a number")
    temperature = float(temperature)
    if not 0.0 <= temperature <= 2.0:
        raise InputError("temperature must be between 0 and 2")
    return prompt, max_tokens, temperature


def summarise(prompt: str, max_tokens: int, temperature: float) -> dict[str, Any]:
    """Extractive summary: sentences ranked by the frequency of their content words.

    At temperature 0 the best-scoring sentences are taken in order; above 0 they are sampled
    with softmax(score / temperature) from a generator seeded by the prompt, so the answer is
    still reproducible for the same input, as tests and caches need.
    """
    tokens = tokenize(prompt)
    words = [w.lower() for w in _WORD_RE.findall(prompt)]
    content = [w for w in words if w not in _STOPWORDS]
    freq = Counter(content)
    ranked_words = sorted(freq.items(), key=lambda item: (-item[1], item[0]))[:10]
    top_words = [{"word": w, "count": c} for w, c in ranked_words]

    sentences = [s.strip() for s in _SENTENCE_RE.split(prompt.strip()) if s.strip()]

    def score(sentence: str) -> float:
        ws = [w.lower() for w in _WORD_RE.findall(sentence)]
        hits = [freq[w] for w in ws if w in freq]
        return sum(hits) / math.sqrt(len(ws)) if ws else 0.0

    scored = [(score(s), i, s) for i, s in enumerate(sentences)]
    if temperature == 0.0:
        ranked = sorted(scored, key=lambda t: (-t[0], t[1]))
    else:
        seed = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "big")
        rng = random.Random(seed)  # noqa: S311 - sampling, not security
        pool = list(scored)
        ranked = []
        while pool:
            top = max(p[0] for p in pool)
            weights = [math.exp((p[0] - top) / temperature) for p in pool]
            pick = rng.choices(range(len(pool)), weights=weights)[0]
            ranked.append(pool.pop(pick))

    chosen: list[tuple[int, str]] = []
    budget = max_tokens
    for _, index, sentence in ranked:
        cost = len(tokenize(sentence))
        if cost > budget:
            continue
        chosen.append((index, sentence))
        budget -= cost
    if not chosen and sentences:
        # Even the shortest sentence is over budget: cut the best one at max_tokens tokens.
        chosen = [(ranked[0][1], " ".join(tokenize(ranked[0][2])[:max_tokens]))]
    summary = " ".join(s for _, s in sorted(chosen))

    echo_tokens = tokens[:max_tokens]
    return {
        "model": MODEL_NAME,
        "summary": summary,
        "top_words": top_words,
        "echo": " ".join(echo_tokens),
        "usage": {
            "prompt_tokens": len(tokens),
            "completion_tokens": len(tokenize(summary)),
        },
        "truncated": len(tokens) > max_tokens,
        "temperature": temperature,
    }


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """RunPod handler: `job` is `{"id": ..., "input": {...}}`; the return value is the output.

    It is async so the `sleep_ms` hook does not block RunPod's event loop (the local server runs
    handlers on its loop). Bad input returns `{"error": ...}`, RunPod's convention for a handled
    failure; an exception (the `fail` hook) becomes a FAILED job with the traceback attached.
    """
    job_id = str(job.get("id", "unknown"))
    _record_run(job_id)
    raw = job.get("input")
    if _hooks_enabled() and isinstance(raw, dict):
        sleep_ms = raw.get("sleep_ms")
        if isinstance(sleep_ms, int) and not isinstance(sleep_ms, bool) and sleep_ms > 0:
            await asyncio.sleep(min(sleep_ms, MAX_SLEEP_MS) / 1000)
        if raw.get("fail"):
            raise RuntimeError(f"simulated GPU failure: {raw['fail']}")
        raw = {k: v for k, v in raw.items() if k not in ("sleep_ms", "fail")}
    try:
        prompt, max_tokens, temperature = _parse_input(raw)
    except InputError as exc:
        return {"error": f"invalid input: {exc}"}
    return summarise(prompt, max_tokens, temperature)


if __name__ == "__main__":
    import runpod  # type: ignore[import-untyped]  # heavy import (~2 s): only when serving

    runpod.serverless.start({"handler": handler})
