"""Bad input at the gate: each kind gets its own problem code and the right 4xx, never a 500,
and leaves the key guard's state (key row, bucket, nonces, leases, idempotency) untouched."""

from __future__ import annotations

import json
import time

import pytest
from tests.support.bad_requests import (
    CASES,
    MODEL,
    UNSIGNED,
    problem_of,
    signed_request,
    with_headers,
)

from gpushield_edge.keyguard import KeyLimits

from .conftest import GateHarness


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_with_its_own_code_and_changes_nothing(
    harness: GateHarness, name: str
) -> None:
    build, status, code = CASES[name]
    request = build(harness)
    before = harness.state_snapshot()

    response = harness.handle(request)

    problem = problem_of(response)
    assert (response.status, problem["code"]) == (status, code)
    assert problem["status"] == status
    assert harness.state_snapshot() == before
    # Nothing from the request is echoed back.
    if name in UNSIGNED:
        assert "signature" not in request.headers
    else:
        assert request.headers["signature"] not in response.body.decode()
    assert b"Summarise" not in response.body


def test_revoked_key_is_refused_on_its_next_request(harness: GateHarness) -> None:
    harness.local.core.set_status(harness.key_id, "revoked")
    before = harness.state_snapshot()
    response = harness.handle(signed_request(harness))
    assert (response.status, problem_of(response)["code"]) == (401, "key_revoked")
    assert harness.state_snapshot() == before


def test_expired_key_is_refused(harness: GateHarness) -> None:
    harness.local.core.storage.query(
        "UPDATE keys SET expires_at = ? WHERE key_id = ?", (time.time() - 1, harness.key_id))
    response = harness.handle(signed_request(harness))
    assert (response.status, problem_of(response)["code"]) == (401, "key_expired")


def test_model_outside_scope_is_forbidden(harness: GateHarness) -> None:
    other = harness.new_key(scopes=("caption",))
    response = harness.handle(signed_request(harness, key=other))
    assert (response.status, problem_of(response)["code"]) == (403, "model_not_in_scope")


def test_replay_is_refused_only_after_admission(harness: GateHarness) -> None:
    request = signed_request(harness)
    first = harness.handle(request)
    # Admitted, then the (absent) backend refused the connection: nothing ran.
    assert problem_of(first)["code"] == "backend_unavailable"
    replay = harness.handle(request)
    assert (replay.status, problem_of(replay)["code"]) == (401, "signature_replayed")


def test_rate_limit_answers_with_retry_after_and_ratelimit_fields(harness: GateHarness) -> None:
    key = harness.new_key(KeyLimits(rate_per_minute=1, burst=2))
    statuses = [harness.handle(signed_request(harness, key=key)) for _ in range(3)]
    assert [problem_of(r)["code"] for r in statuses] == [
        "backend_unavailable", "backend_unavailable", "rate_limited"]
    limited = dict(statuses[2].headers)
    assert statuses[2].status == 429
    assert int(limited["retry-after"]) >= 1
    assert limited["ratelimit-policy"].startswith('"key";q=2;')
    assert problem_of(statuses[2])["retry_after"] == int(limited["retry-after"])


def test_audit_log_has_one_safe_event_per_request(harness: GateHarness) -> None:
    requests = [signed_request(harness) for _ in range(3)]
    requests.append(with_headers(signed_request(harness), signature=None))
    for request in requests:
        harness.handle(request)
    text = harness.state.audit_log.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    assert len(events) == len(requests)
    assert [event["stage"] for event in events] == ["forward"] * 3 + ["authenticate"]
    assert [event.get("code") for event in events] == [
        "backend_unavailable"] * 3 + ["signature_malformed"]
    for request in requests:
        for secret_bit in (request.headers.get("signature"), harness.secret):
            if secret_bit:
                assert secret_bit not in text
    assert "Summarise" not in text
    assert all(event["model"] == MODEL for event in events)
