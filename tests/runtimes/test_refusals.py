"""Bad input over HTTP on both runtimes: the same case table as the in-process gate tests,
each refused with its own status and code, nothing forwarded, and the key's state as the
guard reports it (admissions, last use, version) unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from tests.support.bad_requests import CASES, UNSIGNED, signed_request, to_http

from gpushield.devtools.runpod_worker import RunningWorker
from gpushield_edge.keyguard import KeyLimits

from .conftest import GateUnderTest

# In-process only: the HTTP suite sends a real oversized upload instead (test_secured_path).
HTTP_CASES = {name: case for name, case in CASES.items() if name != (
    "body cut off at the runtime's read cap")}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


def _state(gate: GateUnderTest) -> tuple[object, ...]:
    view = gate.view(gate.key_id)
    record = view.record
    return (record.admitted_count, record.last_used_at, record.version, record.status,
            view.in_flight)


@pytest.mark.parametrize("name", list(HTTP_CASES))
def test_bad_input_is_refused_with_its_own_code_and_changes_nothing(
    gate: GateUnderTest, worker: RunningWorker, http: httpx.Client, name: str
) -> None:
    build, status, code = HTTP_CASES[name]
    request = build(gate)
    before, runs = _state(gate), worker.run_count()

    response = http.send(to_http(request))

    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.status_code, problem["code"]) == (status, code)
    assert _state(gate) == before
    assert worker.run_count() == runs
    if name in UNSIGNED:
        assert "signature" not in request.headers
    else:
        assert request.headers["signature"] not in response.text
    assert "Summarise" not in response.text


def test_revoked_key_is_refused_on_its_very_next_request(
    gate: GateUnderTest, http: httpx.Client
) -> None:
    key = gate.new_key()
    ok = http.send(to_http(signed_request(gate, key=key)))
    assert ok.status_code == 200
    gate.set_status(key[0], "revoked")
    refused = http.send(to_http(signed_request(gate, key=key)))
    assert (refused.status_code, refused.json()["code"]) == (401, "key_revoked")


def test_expired_key_is_refused(gate: GateUnderTest, http: httpx.Client) -> None:
    key = gate.new_key(expires_at=time.time() - 1)
    response = http.send(to_http(signed_request(gate, key=key)))
    assert (response.status_code, response.json()["code"]) == (401, "key_expired")


def test_replayed_request_is_refused_and_runs_nothing(
    gate: GateUnderTest, worker: RunningWorker, http: httpx.Client
) -> None:
    request = to_http(signed_request(gate))
    assert http.send(request).status_code == 200
    runs = worker.run_count()
    replay = http.send(request)
    assert (replay.status_code, replay.json()["code"]) == (401, "signature_replayed")
    assert worker.run_count() == runs


def test_rate_limit_answers_with_retry_after_and_ratelimit_fields(
    gate: GateUnderTest, http: httpx.Client
) -> None:
    key = gate.new_key(KeyLimits(rate_per_minute=1, burst=2))
    answers = [http.send(to_http(signed_request(gate, key=key))) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-policy"].startswith('"key";q=2;')
    assert limited.json()["retry_after"] == int(limited.headers["retry-after"])
