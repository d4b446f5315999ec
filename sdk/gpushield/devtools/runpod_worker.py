"""Starts the example RunPod worker (`examples/runpod_worker/handler.py`) as a real process.

Used by `gpushield demo`, the end-to-end tests and the benchmarks.

The worker is served by the `runpod` package's own development server (`--rp_serve_api`), so
tests talk to genuine RunPod worker code rather than a fake. Startup is dominated by importing
`runpod` (FastAPI, aiohttp, boto3...): about 2 s on the development machine, so test modules
should start one worker per module.

Readiness is checked with GET /openapi.json, which never runs the handler, so the run log only
counts jobs the tests sent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .serving import free_port


def _handler_path() -> Path:
    """The example handler: shipped inside the wheel, or read from the source checkout."""
    packaged = Path(__file__).with_name("runpod_handler.py")
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[3] / "examples" / "runpod_worker" / "handler.py"


HANDLER = _handler_path()
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RunningWorker:
    """A live worker: `url` is its base URL (no /v2 prefix, as the local server has none)."""

    url: str
    runlog_path: Path
    startup_s: float
    pid: int

    def run_count(self) -> int:
        """How many jobs the handler has started (one run-log line each)."""
        if not self.runlog_path.exists():
            return 0
        return len(self.runlog_path.read_text(encoding="utf-8").splitlines())




def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return "<no output>"


@contextmanager
def start_runpod_worker(tmp_path: Path, *, hooks: bool = True) -> Iterator[RunningWorker]:
    """Runs the handler with this interpreter on a free 127.0.0.1 port until the block exits.

    `hooks` sets GPUSHIELD_WORKER_TEST_HOOKS=1 (the `sleep_ms` and `fail` input fields).
    Output goes to files in `tmp_path` rather than pipes: nobody reads a pipe while the tests
    run, and a full pipe would freeze the worker mid-request.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    runlog = tmp_path / "worker-runs.log"
    stdout_path = tmp_path / "worker.stdout"
    stderr_path = tmp_path / "worker.stderr"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "GPUSHIELD_"))}
    env["GPUSHIELD_WORKER_RUNLOG"] = str(runlog)
    env["PYTHONUNBUFFERED"] = "1"
    if hooks:
        env["GPUSHIELD_WORKER_TEST_HOOKS"] = "1"
    command = [
        sys.executable,
        str(HANDLER),
        "--rp_serve_api",
        "--rp_api_host",
        "127.0.0.1",
        "--rp_api_port",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter + our handler
            command,
            cwd=HANDLER.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so cleanup reaches any children
        )
    try:
        _wait_ready(process, url, stderr_path, started)
        yield RunningWorker(
            url=url, runlog_path=runlog, startup_s=time.monotonic() - started, pid=process.pid
        )
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str, stderr: Path, started: float) -> None:
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() - started < STARTUP_TIMEOUT_S:
            if process.poll() is not None:
                raise RuntimeError(
                    f"RunPod worker exited with {process.returncode} during startup:\n"
                    f"{_tail(stderr)}"
                )
            try:
                if client.get(f"{url}/openapi.json").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    _stop(process)
    raise RuntimeError(
        f"RunPod worker not answering on {url} after {STARTUP_TIMEOUT_S:.0f} s:\n{_tail(stderr)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=10)
