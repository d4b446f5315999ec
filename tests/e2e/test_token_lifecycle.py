"""Tokens and key lifecycle over real HTTP: SDK (`TokenAuth`) → local gate (uvicorn) → real
RunPod worker. Keys are managed only through the signed admin API (`AdminClient`), so the
same tests can run against a gate on another runtime: a `Target` is a URL, an admin
credential and a way to move the gate's clock (rotation grace and expiry without sleeping).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpushield import Client, SignatureAuth, TokenAuth
from gpushield.admin import AdminClient
from gpushield.cli.demo import MODEL, demo_config
from gpushield.devtools.gate_server import serve_gate
from gpushield.devtools.runpod_worker import RunningWorker, start_runpod_worker
from gpushield.errors import AuthenticationError, PermissionDenied
from gpushield_edge.admin.service import NewKey, RotatedKey
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.keyguard.records import KeyStatus
from gpushield_wire import credentials

pytestmark = pytest.mark.slow
PROMPT = {"prompt": "Tokens expire. Keys rotate."}


class OffsetClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass
class Target:
    url: str
    admin_secret: str
    clock: OffsetClock  # the gate's wall clock; `advance` moves it (and the SDK's with it)
    runs: Callable[[], int]

    def admin(self, work: Callable[[AdminClient], object]) -> object:
        async def main() -> object:
            async with AdminClient(self.url, self.admin_secret) as admin:
                return await work(admin)  # type: ignore[misc]

        return asyncio.run(main())

    def new_key(self) -> tuple[str, str]:
        limits = KeyLimits(rate_per_minute=600, burst=50, max_concurrency=4)
        created = self.admin(lambda a: a.create(NewKey(scopes=(MODEL,), limits=limits)))
        return created.record.key_id, created.secret  # type: ignore[attr-defined]

    def set_status(self, key_id: str, status: KeyStatus) -> None:
        self.admin(lambda a: a.set_status(key_id, status))

    def rotate(self, key_id: str, grace_s: float) -> RotatedKey:
        rotated = self.admin(lambda a: a.rotate(key_id, grace_s))
        assert isinstance(rotated, RotatedKey)
        return rotated

    def token_client(self, key: tuple[str, str]) -> Client:
        return Client(self.url, auth=TokenAuth(*key, wall_clock=self.clock.now), max_retries=0)

    def signed_client(self, key: tuple[str, str]) -> Client:
        return Client(self.url, auth=SignatureAuth(*key, clock=self.clock.now), max_retries=0)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with start_runpod_worker(tmp_path_factory.mktemp("worker")) as running:
        yield running


@pytest.fixture
def target(worker: RunningWorker, tmp_path: Path) -> Iterator[Target]:
    admin_secret = credentials.format_secret(credentials.new_secret())
    environ = {"GPUSHIELD_ADMIN_SECRET": admin_secret}
    with serve_gate(demo_config(worker.url), tmp_path / "gate", environ=environ) as gate:
        clock = OffsetClock()
        local_gate = gate.local.gate
        local_gate.services = dataclasses.replace(local_gate.services, clock=clock)
        yield Target(gate.url, admin_secret, clock, worker.run_count)


def test_bearer_calls_reach_the_model(target: Target) -> None:
    with target.token_client(target.new_key()) as client:
        results = [client.infer(MODEL, PROMPT) for _ in range(3)]
    assert [r.status for r in results] == ["COMPLETED"] * 3


def test_revoked_key_is_refused_on_the_very_next_request_despite_a_valid_token(
        target: Target) -> None:
    key = target.new_key()
    with target.token_client(key) as client:
        assert client.infer(MODEL, PROMPT).status == "COMPLETED"
        before = target.runs()
        target.set_status(key[0], "revoked")
        with pytest.raises(AuthenticationError) as caught:
            client.infer(MODEL, PROMPT)
        assert caught.value.code == "key_revoked"
        target.set_status(key[0], "quarantined")
        with pytest.raises(PermissionDenied) as quarantined:
            client.infer(MODEL, PROMPT)
        assert quarantined.value.code == "key_quarantined"
        target.set_status(key[0], "active")
        # Restored: the old token is dead (token_revoked), the SDK refreshes once and retries.
        assert client.infer(MODEL, PROMPT).status == "COMPLETED"
    assert target.runs() - before == 1


def test_rotation_grace_window_then_only_the_new_secret(target: Target) -> None:
    old = target.new_key()
    with target.token_client(old) as old_tokens, target.signed_client(old) as old_signed:
        assert old_tokens.infer(MODEL, PROMPT).status == "COMPLETED"
        rotated = target.rotate(old[0], 3600)
        new = (old[0], rotated.secret)
        assert rotated.secret != old[1]
        with target.token_client(new) as new_tokens, target.signed_client(new) as new_signed:
            # In the grace window both secrets work, signed or with (refreshed) tokens.
            for client in (old_tokens, old_signed, new_tokens, new_signed):
                assert client.infer(MODEL, PROMPT).status == "COMPLETED"
            target.clock.offset = 3601.0
            for client in (old_tokens, old_signed):
                with pytest.raises(AuthenticationError) as caught:
                    client.infer(MODEL, PROMPT)
                assert caught.value.code == "signature_invalid"
            for client in (new_tokens, new_signed):
                assert client.infer(MODEL, PROMPT).status == "COMPLETED"


def test_async_client_refreshes_once_after_a_rotation(target: Target) -> None:
    from gpushield import AsyncClient

    key = target.new_key()
    auth = TokenAuth(*key, wall_clock=target.clock.now)

    async def call(client: AsyncClient) -> str:
        return (await client.infer(MODEL, PROMPT)).status

    async def main() -> list[str]:
        async with AsyncClient(target.url, auth=auth, max_retries=0) as client:
            first = await call(client)
            await asyncio.to_thread(target.rotate, key[0], 600)
            # The cached token is now token_revoked: 4 concurrent calls (the key's cap), one
            # refresh.
            rest = await asyncio.gather(*[call(client) for _ in range(4)])
            return [first, *rest]

    assert asyncio.run(main()) == ["COMPLETED"] * 5
    assert auth.token_requests == 2
