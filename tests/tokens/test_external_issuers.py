"""External identity providers at the gate: a real JWKS served over HTTP, fetched through the
gate's Upstream port, cached, refetched on an unknown kid at most once per interval; claim →
model mapping; the app key's status cuts every user off; HS256 only with a strong secret."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tests.gate.conftest import GATE_URL
from tests.support.bad_requests import MODEL, default_body, to_gate_request
from tests.support.clock import OffsetClock

from gpushield_edge.admin.service import LocalKeyAdmin
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.runtime_local.app import LocalGate, load_config_document
from gpushield_edge.runtime_local.clock import SystemClock
from gpushield_edge.runtime_local.state import StateDir
from gpushield_edge.tokens.jwk import JwkError, parse_jwks_document
from gpushield_edge.tokens.oidc import ExternalIssuer
from gpushield_wire import algorithms, credentials

from .forge import b64, segment, sign_hs256

ISSUER = "https://login.example.test/"
AUDIENCE = "gpushield-api"
ADMITTED = (503, "backend_unavailable")


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(numbers.n.to_bytes(size, "big")), "e": b64(numbers.e.to_bytes(3, "big"))}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big"))}


class JwksServer:
    """A real HTTP server publishing a JWKS the test can change; counts fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, str]] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def sign_rs256(key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{segment({'alg': 'RS256', 'kid': kid, 'typ': 'JWT'})}.{segment(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def sign_es256(key: ec.EllipticCurvePrivateKey, kid: str, claims: dict[str, Any]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signing_input = f"{segment({'alg': 'ES256', 'kid': kid})}.{segment(claims)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def user_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 300,
              "scope": "openid models:summarize"}
    claims.update(changes)
    return claims


class Gate:
    def __init__(self, tmp: Path, issuers: dict[str, Any], environ: dict[str, str]) -> None:
        self.document = load_config_document(None)
        self.document["models"][MODEL]["backend"]["base_url"] = "http://127.0.0.1:9"
        self.document["tokens"] = {"issuers": issuers}
        self.loop = asyncio.new_event_loop()
        self.local = LocalGate.build(self.document, StateDir(tmp / "state"), environ)
        self.clock = OffsetClock()
        gate = self.local.gate
        gate.services = dataclasses.replace(gate.services, clock=self.clock)

    def call(self, token: str) -> tuple[int, str | None]:
        request = to_gate_request(httpx.Request(
            "POST", f"{GATE_URL}/v1/models/{MODEL}/infer", content=default_body(),
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"}))
        response = self.loop.run_until_complete(self.local.gate.handle(request))
        return response.status, json.loads(response.body).get("code")

    def create_key(self, key_id: str) -> None:
        self.loop.run_until_complete(self.local.core.create_key(
            key_id=key_id, alg=algorithms.HMAC_SHA256, key_material=credentials.new_secret(),
            scopes=(MODEL,), limits=KeyLimits(), expires_at=None, now=time.time()))

    def close(self) -> None:
        self.loop.run_until_complete(self.local.aclose())
        self.loop.close()


def test_oidc_tokens_are_verified_against_the_fetched_jwks(tmp_path: Path, jwks: JwksServer
                                                           ) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks.keys = [rsa_jwk(rsa_key, "r1")]
    app_key = credentials.new_key_id()
    gate = Gate(tmp_path, {"acme": {
        "issuer": ISSUER, "jwks_url": jwks.url, "audience": AUDIENCE,
        "algorithms": ["RS256", "ES256"], "key_id": app_key,
        "scope_map": {"models:summarize": [MODEL]}, "min_refetch_s": 60}}, {})
    try:
        gate.create_key(app_key)
        assert gate.call(sign_rs256(rsa_key, "r1", user_claims())) == ADMITTED
        assert gate.call(sign_rs256(rsa_key, "r1", user_claims())) == ADMITTED
        assert jwks.fetches == 1  # cached
        # The provider rotates in a new key: the unknown kid triggers one refetch (once the
        # minimum interval since the last fetch has passed).
        jwks.keys = [rsa_jwk(rsa_key, "r1"), ec_jwk(ec_key, "e1")]
        assert gate.call(sign_es256(ec_key, "e1", user_claims())) == (401, "token_kid_unknown")
        assert jwks.fetches == 1
        gate.clock.offset = 61.0
        assert gate.call(sign_es256(ec_key, "e1", user_claims())) == ADMITTED
        assert jwks.fetches == 2
        # A flood of random kids cannot make the gate hammer the provider.
        for i in range(20):
            assert gate.call(sign_es256(ec_key, f"nope{i}", user_claims())) == (
                401, "token_kid_unknown")
        assert jwks.fetches == 2
        refusals = {
            "wrong audience": (sign_rs256(rsa_key, "r1", user_claims(aud="other")),
                               "token_audience_invalid"),
            "no mapped scope": (sign_rs256(rsa_key, "r1", user_claims(scope="openid")),
                                "model_not_in_scope"),
            "expired": (sign_rs256(rsa_key, "r1", user_claims(exp=int(time.time()) - 60)),
                        "token_expired"),
            "HS256 with the RSA modulus as secret": (sign_hs256(
                rsa_jwk(rsa_key, "r1")["n"].encode(), {"alg": "HS256", "kid": "r1"},
                user_claims()), "token_alg_unsupported"),
            "RS256 signature under an ES256 kid": (sign_rs256(rsa_key, "e1", user_claims()),
                                                   "token_alg_unsupported"),
        }
        for name, (token, code) in refusals.items():
            assert gate.call(token)[1] == code, name
        # The app key carries every user: revoke it and they are all cut off at once.
        admin = LocalKeyAdmin(gate.local.core, SystemClock())
        gate.loop.run_until_complete(admin.set_status(app_key, "revoked"))
        assert gate.call(sign_rs256(rsa_key, "r1", user_claims())) == (401, "key_revoked")
    finally:
        gate.close()


def test_a_key_set_nested_too_deeply_is_refused_before_it_is_parsed() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    document = {"keys": [rsa_jwk(rsa_key, "r1")]}
    assert parse_jwks_document(json.dumps(document).encode()) == document["keys"]
    for depth in (40, 30_000):  # past the cap; far past the interpreter's recursion limit
        with pytest.raises(JwkError, match="nests too deeply"):
            parse_jwks_document(b'{"keys": ' + b"[" * depth + b"]" * depth + b"}")


def test_unreachable_jwks_fails_closed(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app_key = credentials.new_key_id()
    gate = Gate(tmp_path, {"acme": {"issuer": ISSUER, "jwks_url": "http://127.0.0.1:9/jwks",
                                    "audience": AUDIENCE, "key_id": app_key}}, {})
    try:
        assert gate.call(sign_rs256(rsa_key, "r1", user_claims())) == (
            503, "issuer_keys_unavailable")
    finally:
        gate.close()


def test_hs256_issuer_needs_a_strong_secret(tmp_path: Path) -> None:
    app_key = credentials.new_key_id()
    entry = {"issuer": ISSUER, "audience": AUDIENCE, "algorithms": ["HS256"],
             "key_id": app_key, "shared_secret_env": "ACME_SECRET"}
    for weak in ("secret", "x" * 31):
        with pytest.raises(ValueError, match="ACME_SECRET"):
            Gate(tmp_path, {"acme": entry}, {"ACME_SECRET": weak})
    strong = b64(b"\x07" * 40)
    gate = Gate(tmp_path, {"acme": entry}, {"ACME_SECRET": strong})
    try:
        gate.create_key(app_key)
        claims = user_claims(scope=MODEL)
        assert gate.call(sign_hs256(strong.encode(), {"alg": "HS256"}, claims)) == ADMITTED
        assert gate.call(sign_hs256(b"secret", {"alg": "HS256"}, claims)) == (
            401, "token_signature_invalid")
    finally:
        gate.close()


def test_issuer_config_mistakes_stop_the_gate(tmp_path: Path) -> None:
    key = credentials.new_key_id()
    bad: list[dict[str, Any]] = [
        {"issuer": ISSUER, "jwks_url": "http://x/j", "key_id": key},  # no audience
        {"issuer": ISSUER, "jwks_url": "http://x/j", "audience": "a", "key_id": "nope"},
        {"issuer": ISSUER, "jwks_url": "http://x/j", "audience": "a", "key_id": key,
         "algorithms": ["none"]},
        {"issuer": ISSUER, "jwks_url": "http://x/j", "audience": "a", "key_id": key,
         "algorithms": ["HS256", "RS256"]},
        {"issuer": ISSUER, "audience": "a", "key_id": key},  # no jwks_url
        {"issuer": ISSUER, "jwks_url": "http://x/j", "audience": "a", "key_id": key,
         "jku": "http://x"},
    ]
    for entry in bad:
        with pytest.raises(ValueError, match=r"issuer|tokens"):
            Gate(tmp_path, {"acme": entry}, {})


def test_hs256_secret_stays_out_of_reprs(tmp_path: Path) -> None:
    strong = b64(b"\x09" * 40)
    gate = Gate(tmp_path, {"acme": {
        "issuer": ISSUER, "audience": AUDIENCE, "algorithms": ["HS256"],
        "key_id": credentials.new_key_id(), "shared_secret_env": "S"}}, {"S": strong})
    try:
        tokens = gate.local.gate.services.tokens
        assert tokens is not None
        issuer = tokens.verifier.issuers[ISSUER]
        assert isinstance(issuer, ExternalIssuer)
        for text in (repr(issuer), repr(issuer.config), repr(tokens),
                     repr(gate.local.config.tokens)):
            assert strong not in text and str(list(strong.encode())) not in text
    finally:
        gate.close()
