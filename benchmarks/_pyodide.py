"""Running a benchmark workload inside Pyodide on the Worker bundle (bench_edge, bench_waf).

The bundle is the exact `wrangler deploy --dry-run` output, with benchmarks/bench_prose.py
copied next to it (the workloads import it); the workload runs under the offline Workers
harness (tests/workers_harness/run_python.mjs) and prints its results as one JSON line last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "workers_harness"
NODE = ["node", "--experimental-wasm-stack-switching"]


def build_bundle(outdir: Path) -> Path:
    """`wrangler deploy --dry-run --outdir outdir` (offline; runs the [build] command first),
    with the prose generator copied in for this run only."""
    subprocess.run(
        ["npx", "--no-install", "wrangler", "deploy", "--dry-run", "--outdir", str(outdir)],
        cwd=ROOT, check=True, capture_output=True,
        env={**os.environ, "WRANGLER_SEND_METRICS": "false"},
    )
    shutil.copy(ROOT / "benchmarks" / "bench_prose.py", outdir / "bench_prose.py")
    return outdir


def run_workload(bundle: Path, workload: Path, *args: str) -> dict[str, Any]:
    """Runs `workload` inside Pyodide on `bundle` and returns its last line, parsed."""
    done = subprocess.run(
        [*NODE, str(HARNESS / "run_python.mjs"), "--bundle", str(bundle), str(workload), *args],
        cwd=ROOT, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def wrangler_config() -> dict[str, Any]:
    """wrangler.toml, parsed (its compatibility date and flags are what the Worker runs on)."""
    with (ROOT / "wrangler.toml").open("rb") as handle:
        return tomllib.load(handle)
