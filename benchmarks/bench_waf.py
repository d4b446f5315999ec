"""Speed of the WAF engine in CPython, as ratios measured in one run.

1. Benign prompts of 1, 4 and 16 KB through `Engine.evaluate` (the inspect stage's work:
   normalisation and every PL1 rule over path, headers and prompt): p50/p99 in µs and µs per
   KB, against `json.loads` of the same request body timed in the same run.
2. The worst adversarial input at 4 KB (see waf_workload.adversarial_prompts) against the
   benign 4 KB prompt: the goal is at most 3x.

Run: .venv/bin/python benchmarks/bench_waf.py [--quick]
The workload is `benchmarks/waf_workload.py` (standard library only), so the same loop can run
inside Pyodide.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.waf_workload import run_suite
from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    result = run_suite(repeat=60 if args.quick else 400)
    console = Console(width=None if sys.stdout.isatty() else 110)

    table = Table(title=f"WAF cost per benign prompt, CPython {sys.version.split()[0]}")
    for column in ("prompt", "p50 µs", "p99 µs", "p50 µs/KB", "p99 µs/KB",
                   "json.loads p50 µs", "WAF / json.loads"):
        table.add_column(column, justify="right")
    for size, row in result["benign"].items():
        kb = size / 1024
        table.add_row(f"{kb:.0f} KB", f"{row['p50']:.0f}", f"{row['p99']:.0f}",
                      f"{row['p50'] / kb:.0f}", f"{row['p99'] / kb:.0f}",
                      f"{row['json_p50']:.1f}", f"{row['p50'] / row['json_p50']:.0f}x")
    console.print(table)

    benign = result["benign_same_size_p50"]
    adversarial = Table(title="Adversarial 4 KB inputs against the benign 4 KB prompt")
    for column in ("input", "p50 µs", "x benign", "blocked"):
        adversarial.add_column(column, justify="right")
    worst = max(result["adversarial"].items(), key=lambda item: item[1]["p50"])
    for name, row in sorted(result["adversarial"].items(), key=lambda item: -item[1]["p50"]):
        adversarial.add_row(name, f"{row['p50']:.0f}", f"{row['p50'] / benign:.2f}",
                            "yes" if row["blocked"] else "no")
    console.print(adversarial)
    console.print(f"benign 4 KB p50: {benign:.0f} µs; worst adversarial: {worst[0]!r} "
                  f"{worst[1]['p50']:.0f} µs = {worst[1]['p50'] / benign:.2f}x (goal ≤ 3x)")


if __name__ == "__main__":
    main()
