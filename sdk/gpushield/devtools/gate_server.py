"""Serves the local gate on uvicorn in a background thread, for the demo and the tests.

It is the same ASGI app `gpushield dev` runs; only the process model differs (a thread, so the
caller can also open the gate's key store and read its audit log).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpushield_edge.runtime_local.app import LocalGate
from gpushield_edge.runtime_local.asgi import GateASGI
from gpushield_edge.runtime_local.state import StateDir

from .serving import listening_socket, serve_asgi


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
) -> Iterator[RunningGate]:
    state = StateDir(state_dir).ensure()
    env = dict(os.environ if environ is None else environ)
    app = GateASGI(lambda: LocalGate.build(config_document, state, env))
    sock, url = listening_socket()
    with serve_asgi(app, sock, name="gpushield-gate"):
        yield RunningGate(url, state, app)
