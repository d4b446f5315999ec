"""The gate inside Pyodide (the Workers runtime) against the same gate in CPython, one run.

1. Gate CPU per request for a signed 1 KB JSON call, key guard in-process, p50/p90/p99, in
   both interpreters, and their ratio. Goal at the edge: p50 ≤ 1 ms, p99 ≤ 2.5 ms (the free
   plan allows 10 ms of CPU per request).
2. The same with budgets: the model priced, the key holding a calendar-day money budget and a
   rolling-hour GPU budget, so every call reserves its worst case and settles (issue 6).
3. Verification of one of the gate's EdDSA access tokens (Ed25519 through `cryptography` in
   CPython, through WebCrypto in Pyodide), p50/p99.
4. Import time of the gate's modules beyond Pyodide's own start, and in CPython.
5. Start-up of a fresh Worker under the harness (Pyodide from its memory snapshot, bundle
   written, entry module imported), as the harness reports it.

The Pyodide side runs the exact `wrangler deploy --dry-run` bundle through the offline harness
(tests/workers_harness/run_python.mjs); both sides run benchmarks/edge_workload.py.

Run: .venv/bin/python benchmarks/bench_edge.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from _pyodide import HARNESS, NODE, ROOT, build_bundle, run_workload, wrangler_config

WORKLOAD = ROOT / "benchmarks" / "edge_workload.py"
PYTHON_STARTUP_LIMIT_MS = 1000


def run_cpython(requests: int) -> dict[str, float]:
    environ = {**os.environ, "PYTHONPATH": f"{ROOT / 'edge'}{os.pathsep}{ROOT / 'shared'}"}
    out = subprocess.run([sys.executable, str(WORKLOAD), str(requests)], env=environ,
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def worker_start_ms(bundle: Path, workdir: Path) -> dict[str, float]:
    """Starts serve.mjs on the bundle and reads the harness's own start-up timings."""
    env_file = workdir / "env.json"
    config = wrangler_config()
    env_file.write_text(json.dumps({"compatibility_date": config["compatibility_date"],
                                    "compatibility_flags": config["compatibility_flags"]}))
    process = subprocess.Popen(
        [*NODE, str(HARNESS / "serve.mjs"), "--bundle", str(bundle), "--env", str(env_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()
        process.terminate()
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    found = re.search(r"loaded in (\d+) ms \((.*?)\)", err)
    if not found:
        return {}
    timings = {"total": float(found.group(1))}
    for name, value in re.findall(r"(\w+) (\d+) ms", found.group(2)):
        timings[name] = float(value)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    args = parser.parse_args()
    requests = 500 if args.quick else 3000
    console = Console(width=None if sys.stdout.isatty() else 120)
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        task = progress.add_task("bundle, CPython, Pyodide, start-up", total=4)
        bundle = build_bundle(Path(tmp) / "bundle")
        progress.advance(task)
        cpython = run_cpython(requests)
        progress.advance(task)
        pyodide = run_workload(bundle, WORKLOAD, str(requests))
        progress.advance(task)
        start = worker_start_ms(bundle, Path(tmp))
        progress.advance(task)

    table = Table(title=f"gate CPU per request, signed {int(cpython['body_bytes'])} B JSON, "
                        f"{requests} requests (µs)")
    for column in ("", f"CPython {cpython['python']}", f"Pyodide {pyodide['python']}",
                   "Pyodide / CPython", "goal at the edge"):
        table.add_column(column, justify="right")
    goals = {"p50_us": "≤ 1000", "p90_us": "", "p99_us": "≤ 2500"}
    for metric in ("p50_us", "p90_us", "p99_us"):
        table.add_row(metric[:3], f"{cpython[metric]:.0f}", f"{pyodide[metric]:.0f}",
                      f"{pyodide[metric] / cpython[metric]:.2f}×", goals[metric])
    for metric, label in (("budget_p50_us", "with budgets p50"),
                          ("budget_p99_us", "with budgets p99"),
                          ("token_p50_us", "token verification p50"),
                          ("token_p99_us", "token verification p99")):
        table.add_row(label, f"{cpython[metric]:.0f}", f"{pyodide[metric]:.0f}",
                      f"{pyodide[metric] / cpython[metric]:.2f}×", "")
    table.add_row("import of the gate's modules (ms)", f"{cpython['import_ms']:.0f}",
                  f"{pyodide['import_ms']:.0f}",
                  f"{pyodide['import_ms'] / cpython['import_ms']:.2f}×", "")
    table.add_row("config parse + first request: WAF rules loaded, engine built (ms)",
                  f"{cpython['first_request_ms']:.0f}", f"{pyodide['first_request_ms']:.0f}",
                  f"{pyodide['first_request_ms'] / cpython['first_request_ms']:.2f}×", "")
    console.print(table)
    if start:
        parts = ", ".join(f"{k} {v:.0f} ms" for k, v in start.items() if k != "total")
        console.print(f"Worker start-up under the harness: {start['total']:.0f} ms ({parts})")
        if "importMain" in start:
            # workerd refuses a Python Worker whose top level takes more than this (it is run
            # at deploy for the snapshot): "Python Worker startup exceeded CPU limit".
            console.print(f"top level of entry.py: {start['importMain']:.0f} ms against "
                          f"workerd's {PYTHON_STARTUP_LIMIT_MS} ms limit for Python start-up")


if __name__ == "__main__":
    main()
