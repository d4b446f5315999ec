"""wallarm/jwt-secrets: 103,979 publicly known HMAC secrets. The gate refuses to start with
any of them configured, and a token signed with any of them is refused, whether it claims to
come from the gate itself or from an HS256 issuer configured with a strong secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import Counter
from pathlib import Path

import pytest
from tests.corpora_path import corpora_dir

from gpushield_edge.runtime_local.crypto import LocalCrypto
from gpushield_edge.tokens.issuer import GateIssuer, new_signing_key_text
from gpushield_edge.tokens.oidc import ExternalIssuer, IssuerConfig
from gpushield_edge.tokens.verifier import BearerVerifier
from gpushield_edge.tokens.weak_secrets import check_shared_secret
from gpushield_wire import credentials
from gpushield_wire.errors import ProblemError

from .forge import b64, sign_hs256

pytestmark = pytest.mark.corpus

GATE_ISSUER = "urn:gpushield:gate"
HS_ISSUER = "https://hs.example.test/"


def corpus_secrets() -> list[bytes]:
    path = corpora_dir() / "jwt/wallarm-jwt-secrets/jwt.secrets.list"
    return [line.rstrip(b"\r") for line in path.read_bytes().split(b"\n") if line.rstrip(b"\r")]


def test_no_corpus_secret_can_be_configured() -> None:
    accepted, messages = [], set()
    for secret in corpus_secrets():
        try:
            check_shared_secret(secret, "TEST_SECRET")
        except ValueError as error:
            messages.add(str(error))
        else:
            accepted.append(secret)
    assert accepted == []
    # Two fixed messages (too short / publicly known): never the secret itself.
    assert len(messages) == 2


def test_shipped_prefix_list_matches_the_corpus() -> None:
    from scripts.derive_weak_secrets import derive

    shipped = (Path(__file__).resolve().parents[2]
               / "edge/gpushield_edge/tokens/weak_hmac_secrets.txt").read_text().splitlines()
    assert [line for line in shipped if not line.startswith("#")] == derive(
        corpora_dir() / "jwt/wallarm-jwt-secrets/jwt.secrets.list")


def test_tokens_signed_with_any_corpus_secret_are_refused() -> None:
    crypto = LocalCrypto(b"k" * 32)
    app_key = credentials.new_key_id()
    gate = GateIssuer(GATE_ISSUER, GATE_ISSUER, new_signing_key_text(), crypto)
    strong = b"\x5a" * 32 + b"gpushield-test-only"
    external = ExternalIssuer(IssuerConfig(
        issuer=HS_ISSUER, audience="api", key_id=app_key, algorithms=frozenset({"HS256"}),
        shared_secret=strong), upstream=None)  # type: ignore[arg-type] - HS256 never fetches
    verifier = BearerVerifier([gate, external], crypto)
    now = int(time.time())
    results: Counter[str] = Counter()

    unsigned = []
    for iss, aud, header in ((GATE_ISSUER, GATE_ISSUER, {"alg": "HS256", "typ": "at+jwt"}),
                             (HS_ISSUER, "api", {"alg": "HS256"})):
        claims = {"iss": iss, "aud": aud, "sub": app_key, "client_id": app_key,
                  "iat": now, "exp": now + 300, "scope": "summarize", "gsv": 1}
        unsigned.append(sign_hs256(b"", header, claims).rsplit(".", 1)[0])

    async def check_all() -> None:
        for secret in corpus_secrets():
            for signing_input in unsigned:
                mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
                try:
                    await verifier.verify(f"{signing_input}.{b64(mac)}", now)
                except ProblemError as error:
                    results[error.code] += 1
                else:
                    results["accepted"] += 1

    asyncio.run(check_all())
    total = sum(results.values())
    print(f"\n{total} tokens signed with wallarm secrets: {results['accepted']} accepted; "
          f"{dict(results)}")
    assert results["accepted"] == 0
    assert set(results) == {"token_alg_unsupported", "token_signature_invalid"}
