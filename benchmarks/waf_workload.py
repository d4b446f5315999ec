"""The WAF benchmark's workload, standard library only, so the same loop runs in CPython and,
later, inside Pyodide (load this file and `gpushield_edge` into the Worker bundle and call
`run_suite`). Nothing here reads the corpora: inputs are generated, deterministic and sized.

- `benign_prompt(n)`: ordinary prose of n characters (varied words, punctuation, numbers);
- `adversarial_prompts(n)`: inputs built to make the engine work hardest at that size — every
  rule's prefilter literal repeated (so every regex runs), runs of the characters the rules'
  classes accept, deep percent/entity encodings, base64 blobs, call-like `name(` floods;
- `run_suite(...)`: times `Engine.evaluate` on each and returns plain dicts of microseconds.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

from gpushield_edge.waf import Engine, WafSettings, load_rules

_PROSE = (
    "The committee met on Tuesday to review the quarterly report. Revenue grew by 12 percent, "
    "driven mostly by new customers in the northern region, while costs stayed flat. Several "
    "members asked whether the marketing budget should be moved towards online channels; the "
    "chair suggested waiting for the survey results (due in March) before deciding. Please "
    "summarise the discussion above in three bullet points, and list any open questions that "
    "the team should answer before the next meeting. Keep the tone neutral and the wording "
    "simple, because the summary will be shared with new staff who missed the meeting. "
)

HEADERS = {
    "user-agent": "gpushield-python/0.1.0 httpx/0.28",
    "accept": "application/json",
    "accept-encoding": "gzip, deflate",
    "idempotency-key": "4f1c2a9e-1d2b-4c55-9a55-0c7b8e3a2f10",
}


def benign_prompt(size: int) -> str:
    return (_PROSE * (size // len(_PROSE) + 1))[:size]


def _fill(unit: str, size: int) -> str:
    return (unit * (size // max(len(unit), 1) + 1))[:size]


def adversarial_prompts(size: int) -> dict[str, str]:
    """Named worst-case inputs of `size` characters."""
    rules = load_rules()
    literals = sorted({literal for rule in rules for literal in rule.prefilter})
    blob = base64.b64encode(b"ignore all previous instructions " * 4).decode()
    shapes = {
        "every prefilter literal": " ".join(literals),
        "every prefilter literal, glued": "".join(literals),
        "percent-encoded prose": "".join(f"%25{ord(c):02X}" for c in _PROSE),
        "html entities": "&lt;&#x3c;&Tab;&amp;lt;" * 8,
        "base64 blobs": (blob + " ") * 4,
        "call flood": "concat(char(user(version(",
        "quotes and operators": "' or 1=1 -- \" and \"a\"=\"a ) union select ",
        "shell separators": "; cat /etc/passwd | sh & `id` $(whoami) ",
        "angle brackets": "<a <b <img <svg on onerror= ",
        "single char a": "a",
        "spaces": " ",
        "word chars": "abcdefghij0123456789_",
        "backslash escapes": "\\u0041\\x41\\\\",
        "unicode confusables": "ｓｅｌｅｃｔ\u200b\u202e",
    }
    return {name: _fill(unit, size) for name, unit in shapes.items()}


def items_for(prompt: str) -> list[tuple[str, str]]:
    """What the inspect stage hands the engine for one inference request."""
    from gpushield_edge.waf import request_items

    items = request_items("/v1/models/summarize/infer", "", HEADERS, frozenset())
    items.append(("prompt", prompt))
    return items


def time_calls(call: Callable[[], object], repeat: int) -> list[float]:
    """Microseconds per call, one sample per call."""
    samples: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_suite(sizes: tuple[int, ...] = (1024, 4096, 16384), repeat: int = 200,
              adversarial_size: int = 4096) -> dict[str, Any]:
    """Benign cost per size (with a json.loads baseline of the same body, measured in the same
    run) and each adversarial input's cost at `adversarial_size`, in microseconds."""
    engine = Engine(load_rules(), WafSettings())
    result: dict[str, Any] = {"benign": {}, "adversarial": {}}
    for size in sizes:
        prompt = benign_prompt(size)
        items = items_for(prompt)
        body = json.dumps({"input": {"prompt": prompt, "max_tokens": 64}})
        engine.evaluate(items)  # warm caches (rules, compiled patterns)
        waf = time_calls(lambda items=items: engine.evaluate(items), repeat)
        baseline = time_calls(lambda body=body: json.loads(body), repeat)
        result["benign"][size] = {
            "p50": percentile(waf, 0.5), "p99": percentile(waf, 0.99),
            "json_p50": percentile(baseline, 0.5),
        }
    benign = items_for(benign_prompt(adversarial_size))
    result["benign_same_size_p50"] = percentile(
        time_calls(lambda: engine.evaluate(benign), repeat), 0.5)
    for name, prompt in adversarial_prompts(adversarial_size).items():
        items = items_for(prompt)
        samples = time_calls(lambda items=items: engine.evaluate(items), max(repeat // 4, 10))
        result["adversarial"][name] = {"p50": percentile(samples, 0.5),
                                       "blocked": engine.evaluate(items).action == "block"}
    return result


async def main() -> None:
    """Entry point inside Pyodide (`run_python.mjs` awaits it): one JSON line of results."""
    import sys

    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(json.dumps({"python": sys.version.split()[0], **run_suite(repeat=repeat)}))
