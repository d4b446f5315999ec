"""Tokens at the local gate: the token endpoint, Bearer requests, revocation and rotation
through the very next request, and every kind of forged or broken token refused with its own
401 code. An admitted request reaches the (unreachable) backend and answers
backend_unavailable: that is how these tests see "admitted" without a GPU."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.gate.conftest import GATE_URL, GateHarness
from tests.support.bad_requests import MODEL, default_body, to_gate_request
from tests.support.clock import OffsetClock

from gpushield import SignatureAuth
from gpushield_edge.admin.service import LocalKeyAdmin
from gpushield_edge.http import GateRequest, GateResponse
from gpushield_edge.runtime_local.clock import SystemClock

from .forge import gate_claims, gate_seed, sign_ed25519, sign_hs256

ADMITTED = (503, "backend_unavailable")
HEADER = {"alg": "EdDSA", "typ": "at+jwt"}


def use_clock(harness: GateHarness) -> OffsetClock:
    clock = OffsetClock()
    gate = harness.local.gate
    gate.services = dataclasses.replace(gate.services, clock=clock)
    return clock


def token_request(form: str, *, auth: httpx.Auth | None = None,
                  headers: dict[str, str] | None = None) -> GateRequest:
    request = httpx.Request("POST", f"{GATE_URL}/oauth/token", content=form.encode(),
                            headers={"content-type": "application/x-www-form-urlencoded",
                                     **(headers or {})})
    if auth is not None:
        request = next(auth.sync_auth_flow(request))
    return to_gate_request(request)


def get_token(harness: GateHarness, key: tuple[str, str] | None = None, form: str = "",
              clock: Callable[[], float] = time.time) -> dict[str, Any]:
    key_id, secret = key or (harness.key_id, harness.secret)
    body = "grant_type=client_credentials" + (f"&{form}" if form else "")
    response = harness.handle(token_request(body, auth=SignatureAuth(key_id, secret,
                                                                     clock=clock)))
    assert response.status == 200, response.body
    document: dict[str, Any] = json.loads(response.body)
    return document


def bearer_request(token: str, body: bytes | None = None, model: str = MODEL) -> GateRequest:
    request = httpx.Request("POST", f"{GATE_URL}/v1/models/{model}/infer",
                            content=default_body() if body is None else body,
                            headers={"content-type": "application/json",
                                     "authorization": f"Bearer {token}"})
    return to_gate_request(request)


def outcome(response: GateResponse) -> tuple[int, str | None]:
    document = json.loads(response.body) if response.body else {}
    return response.status, document.get("code")


def test_signed_token_request_gets_an_rfc9068_token_that_admits(harness: GateHarness) -> None:
    answer = get_token(harness)
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 600
    assert answer["scope"] == MODEL
    header, claims = (json.loads(base64.urlsafe_b64decode(part + "==")) for part in
                      answer["access_token"].split(".")[:2])
    assert header["typ"] == "at+jwt" and header["alg"] == "EdDSA"
    jwks = json.loads(harness.handle(to_gate_request(httpx.Request(
        "GET", f"{GATE_URL}/.well-known/jwks.json"))).body)
    assert [key["kid"] for key in jwks["keys"]] == [header["kid"]]
    assert claims["sub"] == claims["client_id"] == harness.key_id
    assert claims["gsv"] == 1 and claims["exp"] - claims["iat"] == 600
    assert {"iss", "aud", "nbf", "jti"} <= set(claims)
    assert outcome(harness.handle(bearer_request(answer["access_token"]))) == ADMITTED


def test_client_secret_basic_and_post_work_and_wrong_secrets_do_not(
        harness: GateHarness) -> None:
    basic = base64.b64encode(f"{harness.key_id}:{harness.secret}".encode()).decode()
    ok = harness.handle(token_request("grant_type=client_credentials",
                                      headers={"authorization": f"Basic {basic}"}))
    assert ok.status == 200
    assert ("cache-control", "no-store") in ok.headers
    posted = harness.handle(token_request(
        f"grant_type=client_credentials&client_id={harness.key_id}"
        f"&client_secret={harness.secret}"))
    assert posted.status == 200
    _, other_secret = harness.new_key()
    wrong = harness.handle(token_request(
        f"grant_type=client_credentials&client_id={harness.key_id}"
        f"&client_secret={other_secret}"))
    document = json.loads(wrong.body)
    assert (wrong.status, document["error"], document["code"]) == (
        401, "invalid_client", "signature_invalid")
    assert other_secret not in wrong.body.decode()
    assert ("www-authenticate", 'Basic realm="gpushield"') in wrong.headers


@pytest.mark.parametrize(("form", "status", "error"), [
    ("grant_type=password&username=a&password=b", 400, "unsupported_grant_type"),
    ("scope=summarize", 400, "invalid_request"),
    ("grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request"),
    ("grant_type=client_credentials&scope=translate", 400, "invalid_scope"),
    ("grant_type=client_credentials&scope=%20", 400, "invalid_scope"),
    ("grant_type=client_credentials&a=%ZZ&b", 400, "invalid_request"),
])
def test_token_request_errors_follow_rfc6749(harness: GateHarness, form: str, status: int,
                                            error: str) -> None:
    response = harness.handle(token_request(form, auth=SignatureAuth(harness.key_id,
                                                                     harness.secret)))
    document = json.loads(response.body)
    assert (response.status, document["error"]) == (status, error)
    assert ("content-type", "application/json") in response.headers


def test_unauthenticated_and_doubly_authenticated_token_requests(harness: GateHarness
                                                                 ) -> None:
    none = harness.handle(token_request("grant_type=client_credentials"))
    assert (none.status, json.loads(none.body)["error"]) == (401, "invalid_client")
    both = harness.handle(token_request(
        f"grant_type=client_credentials&client_id={harness.key_id}"
        f"&client_secret={harness.secret}", auth=SignatureAuth(harness.key_id,
                                                              harness.secret)))
    assert (both.status, json.loads(both.body)["error"]) == (400, "invalid_request")


def test_a_signed_token_request_cannot_be_replayed(harness: GateHarness) -> None:
    request = token_request("grant_type=client_credentials",
                            auth=SignatureAuth(harness.key_id, harness.secret))
    assert harness.handle(request).status == 200
    again = harness.handle(request)
    assert json.loads(again.body)["code"] == "signature_replayed"


def test_revocation_bites_on_the_very_next_bearer_request(harness: GateHarness) -> None:
    token = get_token(harness)["access_token"]
    assert outcome(harness.handle(bearer_request(token))) == ADMITTED
    admin = LocalKeyAdmin(harness.local.core, SystemClock())
    harness.loop.run_until_complete(admin.set_status(harness.key_id, "revoked"))
    assert outcome(harness.handle(bearer_request(token))) == (401, "key_revoked")
    refused = harness.handle(token_request("grant_type=client_credentials",
                                           auth=SignatureAuth(harness.key_id, harness.secret)))
    assert (refused.status, json.loads(refused.body)["error"]) == (400, "invalid_grant")
    harness.loop.run_until_complete(admin.set_status(harness.key_id, "active"))
    # Restored, but the token was minted under an older version of the key: still dead.
    assert outcome(harness.handle(bearer_request(token))) == (401, "token_revoked")
    assert outcome(harness.handle(bearer_request(get_token(harness)["access_token"]))
                   ) == ADMITTED


def test_quarantine_refuses_tokens_with_403(harness: GateHarness) -> None:
    token = get_token(harness)["access_token"]
    admin = LocalKeyAdmin(harness.local.core, SystemClock())
    harness.loop.run_until_complete(admin.set_status(harness.key_id, "quarantined"))
    assert outcome(harness.handle(bearer_request(token))) == (403, "key_quarantined")


def test_rotation_grace_then_only_the_new_secret(harness: GateHarness) -> None:
    clock = use_clock(harness)
    old = (harness.key_id, harness.secret)
    token = get_token(harness)["access_token"]
    admin = LocalKeyAdmin(harness.local.core, clock)
    rotated = harness.loop.run_until_complete(admin.rotate(harness.key_id, 3600))
    new = (harness.key_id, rotated.secret)
    assert rotated.record.version == 2
    assert rotated.previous_valid_until == pytest.approx(clock.now() + 3600, abs=5)
    # Tokens minted before the rotation die at once; both secrets sign and get tokens.
    assert outcome(harness.handle(bearer_request(token))) == (401, "token_revoked")
    from tests.support.bad_requests import signed_request

    for key in (old, new):
        assert outcome(harness.handle(signed_request(harness, key=key, clock=clock.now))
                       ) == ADMITTED
        assert get_token(harness, key, clock=clock.now)["expires_in"] == 600
    clock.offset = 3601.0
    assert outcome(harness.handle(signed_request(harness, key=old, clock=clock.now))) == (
        401, "signature_invalid")
    assert outcome(harness.handle(signed_request(harness, key=new, clock=clock.now))
                   ) == ADMITTED


def test_token_expiry_is_enforced_with_a_small_skew(harness: GateHarness) -> None:
    clock = use_clock(harness)
    token = get_token(harness)["access_token"]
    clock.offset = 600 + 25.0
    assert outcome(harness.handle(bearer_request(token))) == ADMITTED
    clock.offset = 600 + 31.0
    assert outcome(harness.handle(bearer_request(token))) == (401, "token_expired")


def test_token_scope_limits_models(harness: GateHarness) -> None:
    key = harness.new_key(scopes=("*",))
    token = get_token(harness, key, form="scope=summarize")["access_token"]
    assert outcome(harness.handle(bearer_request(token))) == ADMITTED
    wide = get_token(harness, key)
    assert wide["scope"] == "*"


def test_bound_token_needs_a_signature_by_its_key(harness: GateHarness) -> None:
    token = get_token(harness, form="pop=true")["access_token"]
    assert outcome(harness.handle(bearer_request(token))) == (401, "token_pop_required")
    from tests.support.bad_requests import signed_request

    signed = signed_request(harness, headers={"authorization": f"Bearer {token}"})
    assert outcome(harness.handle(signed)) == ADMITTED
    other = harness.new_key()
    by_other = signed_request(harness, key=other,
                              headers={"authorization": f"Bearer {token}"})
    assert outcome(harness.handle(by_other)) == (401, "token_pop_mismatch")
    unbound = get_token(harness)["access_token"]
    both = signed_request(harness, headers={"authorization": f"Bearer {unbound}"})
    assert outcome(harness.handle(both)) == (401, "token_auth_ambiguous")


def _rsa_public_pem_as_secret() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def forged_cases(h: GateHarness) -> dict[str, tuple[str, str]]:
    """name → (token, expected code). Each is one way a JWT has been attacked in the field."""
    seed = gate_seed(h.state)
    local, key_id = h.local, h.key_id
    tokens = local.gate.services.tokens
    assert tokens is not None
    kid = h.loop.run_until_complete(tokens.issuer.keys())[0].kid
    header = {**HEADER, "kid": kid}
    good = gate_claims(local, key_id)
    now = int(time.time())
    x = base64.urlsafe_b64encode(h.loop.run_until_complete(
        tokens.issuer.keys())[0].public).rstrip(b"=").decode()
    public_jwk = {"kty": "OKP", "crv": "Ed25519", "x": x}
    return {
        "alg none": (f"{sign_ed25519(seed, header, good).rsplit('.', 1)[0]}."
                     .replace(sign_ed25519(seed, header, good).split(".")[0],
                              base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}')
                              .rstrip(b"=").decode()), "token_alg_unsupported"),
        "alg None with signature": (sign_ed25519(seed, {**header, "alg": "None"}, good),
                                    "token_alg_unsupported"),
        "HS256 with the public key as secret": (
            sign_hs256(x.encode(), {**header, "alg": "HS256"}, good), "token_alg_unsupported"),
        "HS256 with a PEM public key as secret": (
            sign_hs256(_rsa_public_pem_as_secret(), {**header, "alg": "HS256"}, good),
            "token_alg_unsupported"),
        "RS256 claimed": (sign_ed25519(seed, {**header, "alg": "RS256"}, good),
                          "token_alg_unsupported"),
        "kid path traversal": (sign_ed25519(seed, {**header, "kid": "../../dev/null"}, good),
                               "token_kid_unknown"),
        "kid SQL injection": (sign_ed25519(seed, {**header, "kid": "x' OR '1'='1"}, good),
                              "token_kid_unknown"),
        "jku header": (sign_ed25519(seed, {**header, "jku": "https://evil.example/j"}, good),
                       "token_header_forbidden"),
        "x5u header": (sign_ed25519(seed, {**header, "x5u": "https://evil.example/c"}, good),
                       "token_header_forbidden"),
        "embedded jwk": (sign_ed25519(seed, {**header, "jwk": public_jwk}, good),
                         "token_header_forbidden"),
        "x5c header": (sign_ed25519(seed, {**header, "x5c": ["MIIB"]}, good),
                       "token_header_forbidden"),
        "unknown crit": (sign_ed25519(seed, {**header, "crit": ["exp"], "exp": 1}, good),
                         "token_header_forbidden"),
        "b64 false": (sign_ed25519(seed, {**header, "b64": False, "crit": ["b64"]}, good),
                      "token_header_forbidden"),
        "typ JWT": (sign_ed25519(seed, {**header, "typ": "JWT"}, good), "token_type_invalid"),
        "typ missing": (sign_ed25519(seed, {"alg": "EdDSA", "kid": kid}, good),
                        "token_type_invalid"),
        "expired": (sign_ed25519(seed, header, gate_claims(local, key_id, iat=now - 900,
                                                            nbf=now - 900, exp=now - 60)),
                    "token_expired"),
        "not yet valid": (sign_ed25519(seed, header, gate_claims(local, key_id, nbf=now + 120)),
                          "token_not_yet_valid"),
        "issued in the future": (sign_ed25519(seed, header, gate_claims(
            local, key_id, iat=now + 120, nbf=None, exp=now + 400)), "token_issued_in_future"),
        "lifetime too long": (sign_ed25519(seed, header, gate_claims(
            local, key_id, exp=now + 3600)), "token_lifetime_too_long"),
        "no exp": (sign_ed25519(seed, header, gate_claims(local, key_id, exp=None)),
                   "token_claims_invalid"),
        "exp as a string": (sign_ed25519(seed, header, gate_claims(local, key_id,
                                                                   exp=str(now + 60))),
                            "token_claims_invalid"),
        "wrong audience": (sign_ed25519(seed, header, gate_claims(local, key_id,
                                                                  aud="https://other.api")),
                           "token_audience_invalid"),
        "no audience": (sign_ed25519(seed, header, gate_claims(local, key_id, aud=None)),
                        "token_audience_invalid"),
        "wrong issuer": (sign_ed25519(seed, header, gate_claims(local, key_id,
                                                                iss="https://evil.example")),
                         "token_issuer_unknown"),
        "no gsv": (sign_ed25519(seed, header, gate_claims(local, key_id, gsv=None)),
                   "token_claims_invalid"),
        "stale gsv": (sign_ed25519(seed, header, gate_claims(local, key_id, version=0)),
                      "token_revoked"),
        "signed by another key": (sign_ed25519(b"\x01" * 32, header, good),
                                  "token_signature_invalid"),
        "payload swapped": (".".join([sign_ed25519(seed, header, good).split(".")[0],
                                      sign_ed25519(seed, header, gate_claims(
                                          local, key_id, scope="*")).split(".")[1],
                                      sign_ed25519(seed, header, good).split(".")[2]]),
                            "token_signature_invalid"),
        "oversized": (sign_ed25519(seed, header, gate_claims(local, key_id, pad="x" * 5000)),
                      "token_too_large"),
        "padding in a segment": (sign_ed25519(seed, header, good).replace(".", "=.", 1),
                                 "token_malformed"),
        "standard base64 characters": (sign_ed25519(seed, header, good) + "+/",
                                       "token_malformed"),
        "duplicate header member": (
            sign_ed25519(seed, b'{"alg":"EdDSA","typ":"at+jwt","kid":"' + kid.encode()
                         + b'","alg":"EdDSA"}', good), "token_malformed"),
        "duplicate claim": (sign_ed25519(seed, header, json.dumps(good)[:-1].encode()
                                         + b', "sub": "gsk_aaaaaaaaaaaaaaaa"}'),
                            "token_claims_invalid"),
        "header not an object": (sign_ed25519(seed, ["alg", "EdDSA"], good),
                                 "token_malformed"),
        "header nested past the JSON depth cap": (
            sign_ed25519(seed, json.dumps(header)[:-1].encode() + b', "x": ' + b"[" * 40
                         + b"]" * 40 + b"}", good), "token_malformed"),
        "claims nested past the JSON depth cap": (
            sign_ed25519(seed, header, json.dumps(good)[:-1].encode() + b', "x": '
                         + b"[" * 40 + b"]" * 40 + b"}"), "token_claims_invalid"),
        # Parsed before any key is looked up; under Pyodide this deep a parse could overflow
        # the WebAssembly stack, so it is refused before json.loads sees it.
        "claims nested past the recursion limit": (sign_ed25519(seed, header, b"[" * 3000),
                                                   "token_claims_invalid"),
        "JWE shape": ("a.b.c.d.e", "token_malformed"),
        "two segments": (".".join(sign_ed25519(seed, header, good).split(".")[:2]),
                         "token_malformed"),
        "empty signature": (sign_ed25519(seed, header, good).rsplit(".", 1)[0] + ".",
                            "token_malformed"),
        "unknown key id as sub": (sign_ed25519(seed, header, gate_claims(
            local, "gsk_aaaaaaaaaaaaaaaa")), "key_unknown"),
        "sub not a key id": (sign_ed25519(seed, header, gate_claims(local, "admin")),
                             "token_claims_invalid"),
    }


def test_every_forged_or_broken_token_is_refused_with_its_code(harness: GateHarness) -> None:
    before = harness.state_snapshot()
    results = {name: outcome(harness.handle(bearer_request(token)))
               for name, (token, _) in forged_cases(harness).items()}
    expected = {name: (401, code) for name, (_, code) in forged_cases(harness).items()}
    assert results == expected
    assert harness.state_snapshot() == before


def test_malformed_authorization_headers(harness: GateHarness) -> None:
    request = bearer_request("abc")
    for value in ("Bearer", "Bearer  ", "Bearer a b", "Bearer é"):
        headers = dict(request.headers, authorization=value)
        response = harness.handle(dataclasses.replace(request, headers=headers))
        assert outcome(response) == (401, "token_malformed"), value
