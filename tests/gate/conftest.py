"""A real local gate (sqlite key guard, AES-GCM sealed secrets, JSONL audit) driven in-process,
and requests signed by the real SDK signer, for the gate's refusal tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gpushield_edge.http import GateRequest, GateResponse
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.runtime_local.app import LocalGate, load_config_document
from gpushield_edge.runtime_local.state import StateDir
from gpushield_wire import algorithms, credentials

MODEL = "summarize"
GATE_URL = "http://gate.test"


@dataclass
class GateHarness:
    local: LocalGate
    state: StateDir
    key_id: str
    secret: str
    loop: asyncio.AbstractEventLoop
    base_url: str = GATE_URL

    def handle(self, request: GateRequest) -> GateResponse:
        return self.loop.run_until_complete(self.local.gate.handle(request))

    def state_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every guard table: a refused request must leave all of it unchanged."""
        query = self.local.core.storage.query
        return {
            table: query(f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608 - fixed names
            for table in ("keys", "buckets", "nonces", "leases", "idempotency")
        }

    def new_key(self, limits: KeyLimits | None = None, scopes: tuple[str, ...] = (MODEL,)
                ) -> tuple[str, str]:
        secret = credentials.new_secret()
        record = self.loop.run_until_complete(self.local.core.create_key(
            key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
            scopes=scopes, limits=limits or KeyLimits(), expires_at=None, now=time.time(),
        ))
        return record.key_id, credentials.format_secret(secret)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[GateHarness]:
    document = load_config_document(None)
    # Nothing listens here: refusal tests must never reach a backend, and if one did the
    # answer would be backend_unavailable, which every test would notice.
    document["models"][MODEL]["backend"]["base_url"] = "http://127.0.0.1:9"
    loop = asyncio.new_event_loop()
    state = StateDir(tmp_path / "state")
    local = LocalGate.build(document, state, {})
    secret = credentials.new_secret()
    record = loop.run_until_complete(local.core.create_key(
        key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
        scopes=(MODEL,), limits=KeyLimits(), expires_at=None, now=time.time(),
    ))
    yield GateHarness(local, state, record.key_id, credentials.format_secret(secret), loop)
    loop.run_until_complete(local.aclose())
    loop.close()
