"""The edge's guard wiring, exercised in CPython: the gate talks to per-key guards through the
JSON RPC surface (as it does to Durable Objects), each key in its own database, and key
administration goes through the directory. Only the JS bridging is left for the Pyodide
suite; every encoding and every per-object assumption is checked here."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from tests.support.bad_requests import problem_of, signed_request

from gpushield_edge.admin.directory import KeyDirectoryCore
from gpushield_edge.admin.durable import DurableKeyAdmin
from gpushield_edge.admin.service import KeyAdminError, NewKey
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.keyguard.guard import KeyGuardCore
from gpushield_edge.keyguard.rpc import GuardEndpoint, GuardUnreachable, RemoteKeyGuard
from gpushield_edge.runtime_local.clock import SystemClock
from gpushield_edge.runtime_local.crypto import LocalCrypto
from gpushield_edge.runtime_local.storage import SqliteStorage

from .conftest import GateHarness


class PerKeyObjects:
    """Durable Objects in miniature: one guard (own sqlite file) per key id, one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.crypto = LocalCrypto(b"k" * 32)
        self.guards: dict[str, GuardEndpoint] = {}
        self.directory = KeyDirectoryCore(SqliteStorage(root / "directory.db"))
        self.directory.migrate()
        self.calls: list[tuple[str, str]] = []
        self.down = False

    async def guard_call(self, key_id: str, method: str, payload: str) -> str:
        if self.down:
            raise GuardUnreachable
        self.calls.append((key_id, method))
        endpoint = self.guards.get(key_id)
        if endpoint is None:
            core = KeyGuardCore(SqliteStorage(self.root / f"{key_id}.db"), self.crypto)
            core.migrate()
            endpoint = self.guards[key_id] = GuardEndpoint(core, SystemClock())
        return await endpoint.dispatch(method, payload)

    async def directory_call(self, method: str, payload: str) -> str:
        return json.dumps(await self.directory.dispatch(method, json.loads(payload)))


@pytest.fixture
def objects(tmp_path: Path) -> PerKeyObjects:
    return PerKeyObjects(tmp_path)


@pytest.fixture
def edge_like(harness: GateHarness, objects: PerKeyObjects) -> GateHarness:
    """The local gate, but with its guard and admin swapped for the edge's RPC versions."""
    admin = DurableKeyAdmin(objects.guard_call, objects.directory_call)
    created = harness.loop.run_until_complete(admin.create(NewKey(scopes=("summarize",))))
    services = replace(harness.local.gate.services, guard=RemoteKeyGuard(objects.guard_call))
    harness.local.gate.services = services
    return replace(harness, key_id=created.record.key_id, secret=created.secret)


def test_admission_over_rpc_takes_one_call_and_refuses_replays(
    edge_like: GateHarness, objects: PerKeyObjects
) -> None:
    request = signed_request(edge_like)
    objects.calls.clear()
    first = edge_like.handle(request)
    # Admitted (the absent backend then refused the connection), lease ended: two calls.
    assert problem_of(first)["code"] == "backend_unavailable"
    assert [method for _, method in objects.calls] == ["admit", "settle"]
    replay = edge_like.handle(request)
    assert problem_of(replay)["code"] == "signature_replayed"


def test_wrong_secret_and_unknown_key_are_refused_by_the_objects(
    edge_like: GateHarness,
) -> None:
    wrong = signed_request(edge_like, key=(edge_like.key_id, "gss_" + "A" * 43))
    assert problem_of(edge_like.handle(wrong))["code"] == "signature_invalid"
    unknown = signed_request(edge_like, key=("gsk_aaaaaaaaaaaaaaaa", edge_like.secret))
    assert problem_of(edge_like.handle(unknown))["code"] == "key_unknown"


def test_unreachable_guard_fails_closed(edge_like: GateHarness, objects: PerKeyObjects) -> None:
    objects.down = True
    response = edge_like.handle(signed_request(edge_like))
    assert (response.status, problem_of(response)["code"]) == (503, "guard_unavailable")


def test_directory_lists_and_follows_status_changes(objects: PerKeyObjects) -> None:
    admin = DurableKeyAdmin(objects.guard_call, objects.directory_call)

    async def scenario() -> None:
        limits = KeyLimits(rate_per_minute=5, burst=2, max_concurrency=1, max_call_gpu_ms=1000)
        one = await admin.create(NewKey(scopes=("summarize",), limits=limits, label="one"))
        two = await admin.create(NewKey(scopes=("*",)))
        assert one.secret.startswith("gss_") and one.secret != two.secret
        listed = await admin.list()
        assert [r.key_id for r in listed] == [one.record.key_id, two.record.key_id]
        assert listed[0].limits == limits and listed[0].label == "one"
        revoked = await admin.set_status(one.record.key_id, "revoked")
        assert revoked.status == "revoked" and revoked.version == 2
        assert [r.status for r in await admin.list()] == ["revoked", "active"]
        view = await admin.get(two.record.key_id)
        assert view.in_flight == 0
        with pytest.raises(KeyAdminError) as missing:
            await admin.get("gsk_aaaaaaaaaaaaaaaa")
        assert missing.value.missing
        with pytest.raises(KeyAdminError):
            await admin.set_status("../../etc", "active")
        # Each key's secret lives only in its own object's database.
        assert set(objects.guards) == {one.record.key_id, two.record.key_id,
                                       "gsk_aaaaaaaaaaaaaaaa"}
        assert await admin.remember_nonce("n1", 2e9, 1e9)
        assert not await admin.remember_nonce("n1", 2e9, 1e9)

    asyncio.run(scenario())
