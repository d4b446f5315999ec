"""Bad input at the gate: each kind gets its own problem code and the right 4xx, never a 500,
and leaves the key guard's state (key row, bucket, nonces, leases, idempotency) untouched."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable

import pytest

from gpushield_edge.http import GateRequest
from gpushield_edge.keyguard import KeyLimits

from .conftest import (
    MODEL,
    GateHarness,
    body_of,
    default_body,
    problem_of,
    signed_request,
    with_headers,
)

Case = Callable[[GateHarness], GateRequest]


def _replace(request: GateRequest, **changes: object) -> GateRequest:
    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


def _resign_header(request: GateRequest, name: str, old: str, new: str) -> GateRequest:
    return with_headers(request, **{name: request.headers[name].replace(old, new)})


CASES: dict[str, tuple[Case, int, str]] = {
    "no signature at all": (
        lambda h: with_headers(signed_request(h), signature=None, signature_input=None),
        401, "signature_missing"),
    "Signature without Signature-Input": (
        lambda h: with_headers(signed_request(h), signature_input=None),
        401, "signature_malformed"),
    "Signature-Input without Signature": (
        lambda h: with_headers(signed_request(h), signature=None),
        401, "signature_malformed"),
    "Signature not a byte sequence": (
        lambda h: with_headers(signed_request(h), signature="gpushield=notbinary"),
        401, "signature_malformed"),
    "Signature-Input not structured": (
        lambda h: with_headers(signed_request(h), signature_input='gpushield=("@method"'),
        401, "signature_malformed"),
    "duplicate label in Signature-Input": (
        lambda h: (lambda r: with_headers(
            r, signature_input=f"{r.headers['signature-input']}, "
                               f"{r.headers['signature-input']}"))(signed_request(h)),
        401, "signature_duplicate_label"),
    "created not an integer": (
        lambda h: (lambda r: with_headers(r, signature_input=r.headers["signature-input"]
                                          .replace(";created=", ';created="').replace(
                                              ";expires=", '";expires=')))(signed_request(h)),
        401, "signature_malformed"),
    "path not covered": (
        lambda h: _resign_header(signed_request(h), "signature-input", '"@path" ', ""),
        401, "signature_components_missing"),
    "wrong alg": (
        lambda h: _resign_header(signed_request(h), "signature-input", "hmac-sha256",
                                 "rsa-pss-sha512"),
        401, "signature_alg_unsupported"),
    "wrong tag": (
        lambda h: _resign_header(signed_request(h), "signature-input", 'tag="gpushield"',
                                 'tag="other-app"'),
        401, "signature_tag_invalid"),
    "expired signature": (
        lambda h: signed_request(h, clock=lambda: time.time() - 3600),
        401, "signature_expired"),
    "signature from the future": (
        lambda h: signed_request(h, clock=lambda: time.time() + 3600),
        401, "signature_not_yet_valid"),
    "Content-Digest missing": (
        lambda h: with_headers(signed_request(h), content_digest=None),
        401, "digest_missing"),
    "Content-Digest malformed": (
        lambda h: with_headers(signed_request(h), content_digest="sha-256=abc"),
        401, "digest_malformed"),
    "Content-Digest with a deprecated algorithm only": (
        lambda h: with_headers(signed_request(h), content_digest="md5=:XrY7u+Ae7tCTyyK7j1rNww==:"),
        401, "digest_alg_unsupported"),
    "body changed after signing": (
        lambda h: _replace(signed_request(h), body=default_body("Summarise something else.")),
        401, "digest_mismatch"),
    "unknown keyid": (
        lambda h: signed_request(h, key=("gsk_aaaaaaaaaaaaaaaa", h.secret)),
        401, "key_unknown"),
    "wrong secret": (
        lambda h: signed_request(h, key=(h.key_id, "gss_" + "A" * 43)),
        401, "signature_invalid"),
    "query added after signing": (
        lambda h: _replace(signed_request(h), query="debug=1"),
        401, "signature_invalid"),
    "body not UTF-8": (
        lambda h: signed_request(h, body=b'{"input": {"prompt": "\xff\xfe"}}'),
        400, "body_not_utf8"),
    "body not JSON": (
        lambda h: signed_request(h, body=b'{"input": {"prompt": '),
        400, "json_invalid"),
    "NaN in JSON": (
        lambda h: signed_request(h, body=b'{"input": {"prompt": "a", "temperature": NaN}}'),
        400, "json_invalid"),
    "duplicate JSON key": (
        lambda h: signed_request(h, body=b'{"input": {"prompt": "a", "prompt": "b"}}'),
        400, "json_duplicate_key"),
    "deep JSON": (
        lambda h: signed_request(h, body=b'{"input": {"prompt": "a", "x": '
                                 + b"[" * 50 + b"]" * 50 + b"}}"),
        400, "json_too_deep"),
    "very deep JSON (past the interpreter's recursion limit)": (
        lambda h: signed_request(h, body=b"[" * 15_000 + b"]" * 15_000),
        400, "json_too_deep"),
    "too many JSON values": (
        lambda h: signed_request(h, body=body_of({"input": {"prompt": "a", "x": [1] * 500}})),
        413, "json_too_large"),
    "oversized body": (
        lambda h: signed_request(h, body=default_body("y" * 40_000)),
        413, "body_too_large"),
    "not JSON media type": (
        lambda h: signed_request(h, headers={"content-type": "text/plain"}),
        415, "unsupported_media_type"),
    "huge headers": (
        lambda h: signed_request(h, headers={"x-padding": "p" * 20_000}),
        431, "headers_too_large"),
    "body cut off at the runtime's read cap": (
        lambda h: _replace(signed_request(h), body=b"", body_truncated=True),
        413, "body_too_large"),
    "unknown model": (
        lambda h: signed_request(h, model="no-such-model"),
        404, "model_unknown"),
    "prompt too long": (
        lambda h: signed_request(h, body=default_body("z" * 4_001)),
        422, "input_too_long"),
    "parameter out of range": (
        lambda h: signed_request(h, body=body_of({"input": {"prompt": "a", "max_tokens": 9999}})),
        422, "parameter_out_of_range"),
    "number too large for a float": (
        lambda h: signed_request(h, body=b'{"input": {"prompt": "a", "temperature": 1'
                                 + b"0" * 400 + b"}}"),
        422, "parameter_out_of_range"),
    "parameter of the wrong type": (
        lambda h: signed_request(h, body=body_of({"input": {"prompt": "a", "max_tokens": "9"}})),
        422, "parameter_type"),
    "parameter the model does not take": (
        lambda h: signed_request(h, body=body_of({"input": {"prompt": "a", "webhook": "x"}})),
        422, "parameter_not_allowed"),
    "body without input": (
        lambda h: signed_request(h, body=body_of({"prompt": "a"})),
        422, "input_invalid"),
    "Idempotency-Key as a token, not a string": (
        lambda h: signed_request(h, headers={"idempotency-key": "abc"}),
        400, "idempotency_key_invalid"),
}


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
    assert request.headers.get("signature", "\0") not in response.body.decode()
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
