"""Speed of the WAF engine in CPython, as ratios measured in one run.

1. Benign prompts of 1, 4 and 16 KB through `Engine.evaluate` (the inspect stage's work:
   normalisation and every PL1 rule over path, headers and prompt): p50/p99 in µs and µs per
   KB, against `json.loads` of the same request body timed in the same run.
2. The worst adversarial input at 4 KB (see waf_workload.adversarial_prompts) against the
   benign 4 KB prompt: the goal is at most 3x.

3. The same loop inside Pyodide on the Worker bundle (the offline Workers harness): µs per KB
   and the ratio to CPython.

Run: .venv/bin/python benchmarks/bench_waf.py [--quick] [--no-pyodide]
The workload is `benchmarks/waf_workload.py` (standard library only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.waf_workload import run_suite
from rich.console import Console
from rich.table import Table


def run_in_pyodide(repeat: int) -> dict[str, Any]:
    """The same workload inside Pyodide, on the exact wrangler bundle (the Workers harness)."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        subprocess.run(["npx", "--no-install", "wrangler", "deploy", "--dry-run", "--outdir",
                        str(bundle)], cwd=root, check=True, capture_output=True,
                       env={**os.environ, "WRANGLER_SEND_METRICS": "false"})
        # The workload imports only the gate's package, which the bundle holds.
        done = subprocess.run(
            ["node", "--experimental-wasm-stack-switching",
             str(root / "tests" / "workers_harness" / "run_python.mjs"), "--bundle", str(bundle),
             str(root / "benchmarks" / "waf_workload.py"), str(repeat)],
            cwd=root, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["benign"] = {int(size): row for size, row in result["benign"].items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-pyodide", action="store_true",
                        help="skip the Pyodide run (it needs Node and the npm tooling)")
    args = parser.parse_args()
    repeat = 60 if args.quick else 400
    result = run_suite(repeat=repeat)
    console = Console(width=None if sys.stdout.isatty() else 110)
    if not args.no_pyodide:
        edge = run_in_pyodide(repeat)
        table = Table(title=f"WAF per benign prompt: CPython {sys.version.split()[0]} against "
                            f"Pyodide {edge['python']} (the Worker), same run")
        for column in ("prompt", "CPython p50 µs/KB", "Pyodide p50 µs/KB", "Pyodide p99 µs/KB",
                       "Pyodide / CPython"):
            table.add_column(column, justify="right")
        for size, row in result["benign"].items():
            kb = size / 1024
            there = edge["benign"][size]
            table.add_row(f"{kb:.0f} KB", f"{row['p50'] / kb:.0f}", f"{there['p50'] / kb:.0f}",
                          f"{there['p99'] / kb:.0f}", f"{there['p50'] / row['p50']:.2f}x")
        console.print(table)
        worst = max(edge["adversarial"].values(), key=lambda row: row["p50"])["p50"]
        console.print(f"Pyodide: worst adversarial 4 KB input {worst:.0f} µs = "
                      f"{worst / edge['benign_same_size_p50']:.2f}x the benign 4 KB prompt")

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
