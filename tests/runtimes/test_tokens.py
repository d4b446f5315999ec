"""Tokens and key lifecycle over real HTTP on both runtimes: SDK (`TokenAuth`) → gate → real
RunPod worker, keys managed only through the signed admin API, the gate's wall clock moved
instead of sleeping (rotation grace, token expiry)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tests.support.bad_requests import default_body, nested_token

from gpushield import AsyncClient, Client, SignatureAuth, TokenAuth
from gpushield.cli.demo import MODEL
from gpushield.devtools.runpod_worker import RunningWorker
from gpushield.errors import AuthenticationError, PermissionDenied
from gpushield_edge.admin.service import RotatedKey
from gpushield_edge.keyguard import KeyLimits

from .conftest import GateUnderTest

pytestmark = pytest.mark.slow
PROMPT = {"prompt": "Tokens expire. Keys rotate."}
ROOMY = KeyLimits(rate_per_minute=600, burst=50, max_concurrency=4)


def token_client(gate: GateUnderTest, key: tuple[str, str]) -> Client:
    return Client(gate.url, auth=TokenAuth(*key, wall_clock=gate.wall_clock), max_retries=0)


def signed_client(gate: GateUnderTest, key: tuple[str, str]) -> Client:
    return Client(gate.url, auth=SignatureAuth(*key, clock=gate.wall_clock), max_retries=0)


def rotate(gate: GateUnderTest, key_id: str, grace_s: float) -> RotatedKey:
    rotated = gate.admin(lambda admin: admin.rotate(key_id, grace_s))
    assert isinstance(rotated, RotatedKey)
    return rotated


def test_bearer_calls_reach_the_model(gate: GateUnderTest) -> None:
    with token_client(gate, gate.new_key(ROOMY)) as client:
        results = [client.infer(MODEL, PROMPT) for _ in range(3)]
    assert [r.status for r in results] == ["COMPLETED"] * 3


def test_deeply_nested_token_claims_are_refused_and_the_gate_lives_on(
    gate: GateUnderTest, worker: RunningWorker
) -> None:
    """The claims are parsed before any key is looked up, so anyone can send these. Under
    Pyodide JSON nested deep enough overflows the WebAssembly stack and takes the isolate
    down (as deep request bodies did): the token is refused, and the gate goes on serving."""
    runs = worker.run_count()
    for depth in (4_500, 3_000):
        response = httpx.post(
            f"{gate.url}/v1/models/{MODEL}/infer", content=default_body(), timeout=30,
            trust_env=False,
            headers={"content-type": "application/json",
                     "authorization": f"Bearer {nested_token(depth)}"},
        )
        assert (response.status_code, response.json()["code"]) == (401, "token_claims_invalid")
    assert worker.run_count() == runs
    with token_client(gate, gate.new_key(ROOMY)) as client:
        assert client.infer(MODEL, PROMPT).status == "COMPLETED"


def test_revoked_key_is_refused_on_the_very_next_request_despite_a_valid_token(
    gate: GateUnderTest, worker: RunningWorker
) -> None:
    key = gate.new_key(ROOMY)
    with token_client(gate, key) as client:
        assert client.infer(MODEL, PROMPT).status == "COMPLETED"
        before = worker.run_count()
        gate.set_status(key[0], "revoked")
        with pytest.raises(AuthenticationError) as caught:
            client.infer(MODEL, PROMPT)
        assert caught.value.code == "key_revoked"
        gate.set_status(key[0], "quarantined")
        with pytest.raises(PermissionDenied) as quarantined:
            client.infer(MODEL, PROMPT)
        assert quarantined.value.code == "key_quarantined"
        gate.set_status(key[0], "active")
        # Restored: the old token is dead (token_revoked); the SDK refreshes once and retries.
        assert client.infer(MODEL, PROMPT).status == "COMPLETED"
    assert worker.run_count() - before == 1


def test_rotation_grace_window_then_only_the_new_secret(gate: GateUnderTest) -> None:
    old = gate.new_key(ROOMY)
    with token_client(gate, old) as old_tokens, signed_client(gate, old) as old_signed:
        assert old_tokens.infer(MODEL, PROMPT).status == "COMPLETED"
        rotated = rotate(gate, old[0], 3600)
        new = (old[0], rotated.secret)
        assert rotated.secret != old[1]
        with token_client(gate, new) as new_tokens, signed_client(gate, new) as new_signed:
            # In the grace window both secrets work, signed or with (refreshed) tokens.
            for client in (old_tokens, old_signed, new_tokens, new_signed):
                assert client.infer(MODEL, PROMPT).status == "COMPLETED"
            gate.advance_clock(3601.0)
            for client in (old_tokens, old_signed):
                with pytest.raises(AuthenticationError) as caught:
                    client.infer(MODEL, PROMPT)
                assert caught.value.code == "signature_invalid"
            for client in (new_tokens, new_signed):
                assert client.infer(MODEL, PROMPT).status == "COMPLETED"


def test_async_client_refreshes_once_after_a_rotation(gate: GateUnderTest) -> None:
    key = gate.new_key(ROOMY)
    auth = TokenAuth(*key, wall_clock=gate.wall_clock)

    async def call(client: AsyncClient) -> str:
        return (await client.infer(MODEL, PROMPT)).status

    async def main() -> list[str]:
        async with AsyncClient(gate.url, auth=auth, max_retries=0) as client:
            first = await call(client)
            await asyncio.to_thread(rotate, gate, key[0], 600)
            # The cached token is now token_revoked: 4 concurrent calls (the key's cap), one
            # refresh.
            rest = await asyncio.gather(*[call(client) for _ in range(4)])
            return [first, *rest]

    assert asyncio.run(main()) == ["COMPLETED"] * 5
    assert auth.token_requests == 2
