"""The Worker under test: the exact bundle `wrangler deploy --dry-run` produces, served by the
Pyodide harness (tests/workers_harness) with in-process Durable Objects on SQLite.

Nothing here imports the edge code into this interpreter: the gate runs in Pyodide, in Node,
and is reached over HTTP like any deployed Worker.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "workers_harness"
NODE_FLAGS = ("--experimental-wasm-stack-switching",)
READY_TIMEOUT_S = 60.0
LOG_CATCH_UP_S = 10.0  # the stdout copier thread is behind by a few lines at most


def wrangler_config() -> dict[str, Any]:
    with (ROOT / "wrangler.toml").open("rb") as handle:
        return tomllib.load(handle)


def require_node_tooling() -> None:
    """Skips (or, in CI, fails) when Node or the pinned npm packages are missing."""
    missing = None
    if shutil.which("node") is None:
        missing = "Node.js is not installed"
    elif not (ROOT / "node_modules" / "pyodide").is_dir():
        missing = "the Node tooling is not installed (bash scripts/setup_node.sh)"
    if missing is None:
        return
    if os.environ.get("GPUSHIELD_REQUIRE_WORKERS") == "1":
        pytest.fail(f"Worker runtime tests cannot run: {missing}")
    pytest.skip(f"Worker runtime tests need Node: {missing}")


def build_bundle(outdir: Path) -> Path:
    """`wrangler deploy --dry-run --outdir` — offline; runs the [build] command first."""
    environ = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "1"}
    result = subprocess.run(
        ["npx", "--no-install", "wrangler", "deploy", "--dry-run", "--outdir", str(outdir)],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300, check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"wrangler dry-run failed:\n{result.stdout}\n{result.stderr}")
    return outdir


def env_description(vars_: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, Any]:
    """The harness's env: wrangler.toml's compatibility settings and Durable Object bindings,
    plus the vars and secrets a deployment would set."""
    config = wrangler_config()
    return {
        "compatibility_date": config["compatibility_date"],
        "compatibility_flags": config["compatibility_flags"],
        "vars": dict(vars_),
        "secrets": dict(secrets),
        "durable_objects": {
            binding["name"]: binding["class_name"]
            for binding in config["durable_objects"]["bindings"]
        },
    }


@dataclass
class RunningWorkerGate:
    url: str
    control: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def set_fault(self, binding: str, mode: str) -> None:
        httpx.post(f"{self.control}/faults", json={"binding": binding, "mode": mode},
                   timeout=10).raise_for_status()

    def set_clock(self, offset_s: float) -> None:
        httpx.post(f"{self.control}/clock", json={"offset_s": offset_s},
                   timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.control}/stats", timeout=10).json()
        return answer

    def log(self) -> str:
        """Everything the Worker printed, including what its waitUntil work printed after the
        responses already received: like Workers Logs once the invocations have finished."""
        marker = f"[harness] idle {secrets.token_hex(8)}"
        httpx.post(f"{self.control}/idle", json={"marker": marker.rsplit(" ", 1)[1]},
                   timeout=30).raise_for_status()
        deadline = time.monotonic() + LOG_CATCH_UP_S
        while True:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if marker in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the Worker's log never showed {marker!r}")
            time.sleep(0.01)


def _drain(stream: Any, log_path: Path) -> None:
    with log_path.open("ab") as log:
        for line in stream:
            log.write(line)
            log.flush()


@contextmanager
def serve_worker(bundle: Path, description: dict[str, Any], workdir: Path
                 ) -> Iterator[RunningWorkerGate]:
    workdir.mkdir(parents=True, exist_ok=True)
    env_file = workdir / "env.json"
    env_file.write_text(json.dumps(description), encoding="utf-8")
    env_file.chmod(0o600)
    log_path = workdir / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["node", *NODE_FLAGS, str(HARNESS / "serve.mjs"), "--bundle", str(bundle),
             "--env", str(env_file)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
        )
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
            line = process.stdout.readline() if ready else b""
            if not line:
                process.kill()
                raise AssertionError(
                    f"the Worker did not start:\n{log_path.read_text(errors='replace')}")
            address = json.loads(line)
            # Anything else the process prints on stdout (console.log) goes to the log, so a
            # full pipe can never stall the Worker.
            threading.Thread(target=_drain, args=(process.stdout, log_path), daemon=True).start()
            yield RunningWorkerGate(address["url"], address["control"], process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
