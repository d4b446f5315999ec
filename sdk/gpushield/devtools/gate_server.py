"""Serves the local gate on uvicorn in a background thread, for the demo and the tests.

It is the same ASGI app `gpushield dev` runs; only the process model differs (a thread, so the
caller can also open the gate's key store and read its audit log).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from gpushield_edge.runtime_local.app import LocalGate
from gpushield_edge.runtime_local.asgi import GateASGI
from gpushield_edge.runtime_local.state import StateDir

STARTUP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RunningGate:
    url: str
    state: StateDir
    app: GateASGI

    @property
    def local(self) -> LocalGate:
        assert self.app.local is not None
        return self.app.local


@contextmanager
def serve_gate(
    config_document: Mapping[str, Any],
    state_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Iterator[RunningGate]:
    state = StateDir(state_dir).ensure()
    env = dict(os.environ if environ is None else environ)
    app = GateASGI(lambda: LocalGate.build(config_document, state, env))
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
        access_log=False,
    ))
    thread = threading.Thread(target=server.run, name="gpushield-gate", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the gate did not start on 127.0.0.1:{port}")
        time.sleep(0.01)
    try:
        yield RunningGate(f"http://127.0.0.1:{port}", state, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
