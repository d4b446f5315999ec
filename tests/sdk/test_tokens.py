"""`TokenAuth` against a real local gate over HTTP (uvicorn): single flight across threads and
asyncio tasks, early refresh with jitter on an injected clock, and no token in any repr."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gpushield import TokenAuth
from gpushield.devtools.gate_server import RunningGate, serve_gate
from gpushield.errors import AuthenticationError
from gpushield_edge.admin.service import LocalKeyAdmin, NewKey
from gpushield_edge.runtime_local.app import load_config_document
from gpushield_edge.runtime_local.clock import SystemClock

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGate]:
    document = load_config_document(None)
    with serve_gate(document, tmp_path_factory.mktemp("gate"), environ={}) as running:
        yield running


def new_key(gate: RunningGate) -> tuple[str, str]:
    created = asyncio.run(LocalKeyAdmin(gate.local.core, SystemClock()).create(
        NewKey(scopes=("summarize",))))
    return created.record.key_id, created.secret


def token_events(gate: RunningGate, key_id: str) -> int:
    lines = gate.state.audit_log.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines
               if (event := json.loads(line))["route"] == "/oauth/token"
               and event.get("key_id") == key_id and event["status"] == 200)


class ManualClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_fifty_threads_cause_one_token_request(gate: RunningGate) -> None:
    key_id, secret = new_key(gate)
    auth = TokenAuth(key_id, secret)
    barrier = threading.Barrier(50)
    tokens: list[str] = []

    def call() -> None:
        with httpx.Client(base_url=gate.url, trust_env=False) as http:
            barrier.wait()
            tokens.append(auth.get_token(http))

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 50 and len(set(tokens)) == 1
    assert auth.token_requests == 1
    assert token_events(gate, key_id) == 1


def test_fifty_tasks_cause_one_token_request(gate: RunningGate) -> None:
    key_id, secret = new_key(gate)
    auth = TokenAuth(key_id, secret)

    async def main() -> list[str]:
        async with httpx.AsyncClient(base_url=gate.url, trust_env=False) as http:
            return await asyncio.gather(*[auth.aget_token(http) for _ in range(50)])

    tokens = asyncio.run(main())
    assert len(set(tokens)) == 1
    assert auth.token_requests == 1
    assert token_events(gate, key_id) == 1


def test_refreshes_ahead_of_expiry_with_jitter(gate: RunningGate) -> None:
    key_id, secret = new_key(gate)
    clock = ManualClock()
    auth = TokenAuth(key_id, secret, clock=clock, rng=lambda: 0.5)  # refresh at 85 % of 600 s
    with httpx.Client(base_url=gate.url, trust_env=False) as http:
        first = auth.get_token(http)
        clock.t += 509
        assert auth.get_token(http) == first
        clock.t += 2
        second = auth.get_token(http)
    assert second != first
    assert auth.token_requests == 2


def test_refused_token_request_raises_typed_error_without_secrets(gate: RunningGate) -> None:
    key_id, _ = new_key(gate)
    wrong = new_key(gate)[1]
    auth = TokenAuth(key_id, wrong)
    with httpx.Client(base_url=gate.url, trust_env=False) as http, pytest.raises(
            AuthenticationError) as caught:
        auth.get_token(http)
    assert caught.value.code == "signature_invalid"
    assert wrong not in str(caught.value)


def test_repr_hides_secret_and_token_and_pickling_is_refused(gate: RunningGate,
                                                             tmp_path: Path) -> None:
    key_id, secret = new_key(gate)
    auth = TokenAuth(key_id, secret)
    with httpx.Client(base_url=gate.url, trust_env=False) as http:
        token = auth.get_token(http)
    for text in (repr(auth), str(auth), repr(auth._token)):
        assert token not in text and secret not in text
    with pytest.raises(TypeError):
        pickle.dumps(auth)
