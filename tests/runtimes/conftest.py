"""One gate, two runtimes: every test here runs against the local ASGI gate (CPython, sqlite3)
and against the Worker (the exact wrangler bundle in Pyodide, Durable Objects on SQLite),
with the SDK as the client and a real RunPod worker behind. Keys are made through the signed
admin API on both, so the tests never reach into either runtime's storage."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from tests.support.clock import OffsetClock
from tests.support.workers_runtime import (
    RunningWorkerGate,
    build_bundle,
    env_description,
    require_node_tooling,
    serve_worker,
)

from gpushield.admin import AdminClient
from gpushield.cli.demo import MODEL, create_demo_keys, demo_config
from gpushield.devtools.gate_server import RunningGate, serve_gate
from gpushield.devtools.runpod_worker import RunningWorker, start_runpod_worker
from gpushield.devtools.scenarios import Keys
from gpushield_edge.admin.service import KeyView, NewKey
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.keyguard.records import KeyStatus
from gpushield_edge.tokens.issuer import new_signing_key_text
from gpushield_wire import credentials

RUNTIMES = ("local", "workers")
_AUDIT_LINE = re.compile(r'\{"gpushield_audit":.*\}')


@dataclass
class GateUnderTest:
    runtime: str
    url: str
    admin_secret: str
    local: RunningGate | None = None
    edge: RunningWorkerGate | None = None

    # The Signer protocol (tests/support/bad_requests.py) for the gate's own admin-made key.
    key_id: str = ""
    secret: str = ""
    clock_offset: float = 0.0

    def advance_clock(self, offset_s: float) -> None:
        """Moves the gate's wall clock `offset_s` ahead of real time (0 puts it back): past a
        grace window or an expiry without sleeping. Clients use `wall_clock` to follow it."""
        self.clock_offset = offset_s
        if self.local is not None:
            clock = self.local.local.gate.services.clock
            assert isinstance(clock, OffsetClock)
            clock.offset = offset_s
        else:
            assert self.edge is not None
            self.edge.set_clock(offset_s)

    def wall_clock(self) -> float:
        return time.time() + self.clock_offset

    @property
    def base_url(self) -> str:
        return self.url

    def admin(self, work: Any) -> Any:
        """`work(admin)` with an `AdminClient` signed in to this gate's admin API; its result."""

        async def main() -> Any:
            async with AdminClient(self.url, self.admin_secret) as admin:
                return await work(admin)

        return asyncio.run(main())

    def new_key(self, limits: KeyLimits | None = None, scopes: tuple[str, ...] = (MODEL,),
                expires_at: float | None = None) -> tuple[str, str]:
        created = self.admin(lambda admin: admin.create(
            NewKey(scopes=scopes, limits=limits or KeyLimits(), expires_at=expires_at)))
        return created.record.key_id, created.secret

    def demo_keys(self) -> Keys:
        return self.admin(create_demo_keys)  # type: ignore[no-any-return]

    def view(self, key_id: str) -> KeyView:
        return self.admin(lambda admin: admin.get(key_id))  # type: ignore[no-any-return]

    def set_status(self, key_id: str, status: KeyStatus) -> None:
        self.admin(lambda admin: admin.set_status(key_id, status))

    def audit_events(self) -> list[dict[str, Any]]:
        """Locally the JSONL audit log; at the edge the console lines Workers Logs collect."""
        if self.local is not None:
            text = self.local.state.audit_log.read_text(encoding="utf-8")
            return [json.loads(line) for line in text.splitlines()]
        assert self.edge is not None
        return [json.loads(match)["gpushield_audit"]
                for match in _AUDIT_LINE.findall(self.edge.log())]

    def audit_text(self) -> str:
        if self.local is not None:
            return self.local.state.audit_log.read_text(encoding="utf-8")
        assert self.edge is not None
        return self.edge.log()


def gate_document(worker_url: str) -> dict[str, Any]:
    """The demo's config, with the worker's test hooks accepted as model parameters so tests
    can make the real worker fail or run long through the front door."""
    document = demo_config(worker_url)
    for model in document["models"].values():  # type: ignore[attr-defined]
        parameters = model["policy"]["parameters"]
        parameters["fail"] = {"type": "string", "max_length": 40}
        parameters["sleep_ms"] = {"type": "integer", "minimum": 0, "maximum": 5000}
    return document


@pytest.fixture(scope="module")
def gate_overrides() -> dict[str, Any]:
    """Top-level config sections a test module adds to the gate's (prices, budgets, …)."""
    return {}


@pytest.fixture(autouse=True)
def _real_time_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "gate" in request.fixturenames:
        gate = request.getfixturevalue("gate")
        if gate.clock_offset:
            gate.advance_clock(0.0)


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with start_runpod_worker(tmp_path_factory.mktemp("runpod"), hooks=True) as running:
        yield running


@pytest.fixture(scope="session")
def worker_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_node_tooling()
    return build_bundle(tmp_path_factory.mktemp("bundle") / "out")


@pytest.fixture(scope="module", params=RUNTIMES)
def gate(
    request: pytest.FixtureRequest, worker: RunningWorker,
    tmp_path_factory: pytest.TempPathFactory, gate_overrides: dict[str, Any],
) -> Iterator[GateUnderTest]:
    admin_secret = credentials.format_secret(credentials.new_secret())
    document = _merged(gate_document(worker.url), gate_overrides)
    root = tmp_path_factory.mktemp(f"gate-{request.param}")
    if request.param == "local":
        environ = {"GPUSHIELD_ADMIN_SECRET": admin_secret}
        with serve_gate(document, root, environ=environ) as running:
            gate = running.local.gate
            gate.services = dataclasses.replace(gate.services, clock=OffsetClock())
            yield _with_key(GateUnderTest("local", running.url, admin_secret, local=running))
        return
    bundle = request.getfixturevalue("worker_bundle")
    description = env_description(
        {"GPUSHIELD_CONFIG": tomli_w.dumps(document)},
        {"GPUSHIELD_KEK": base64.urlsafe_b64encode(os.urandom(32)).decode(),
         "GPUSHIELD_ADMIN_SECRET": admin_secret,
         "GPUSHIELD_TOKEN_SIGNING_KEY": new_signing_key_text()},
    )
    with serve_worker(bundle, description, root) as edge:
        yield _with_key(GateUnderTest("workers", edge.url, admin_secret, edge=edge))


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` laid over `base`, tables merged recursively (so a module can add a model)."""
    merged = dict(base)
    for name, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merged(merged[name], value)
        else:
            merged[name] = value
    return merged


def _with_key(gate: GateUnderTest) -> GateUnderTest:
    gate.key_id, gate.secret = gate.new_key()
    return gate
