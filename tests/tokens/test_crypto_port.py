"""The Crypto port's token methods, against RFC vectors: the contract the WebCrypto side must
meet too (run these against any `Crypto` implementation)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from gpushield_edge.ports import Crypto
from gpushield_edge.runtime_local.crypto import LocalCrypto

# RFC 8037 Appendix A.1 / A.4: the Ed25519 key and the JWS signature of "Example of Ed25519
# signing" under the protected header {"alg":"EdDSA"}.
SEED = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
PUBLIC = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
SIGNATURE = ("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_"
             "MuM0KAg")


def raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def crypto() -> Crypto:
    return LocalCrypto(b"k" * 32)


def test_ed25519_public_key_and_signature_match_rfc8037(crypto: Crypto) -> None:
    assert asyncio.run(crypto.ed25519_public_key(raw(SEED))) == raw(PUBLIC)
    assert asyncio.run(crypto.ed25519_sign(raw(SEED), SIGNING_INPUT)) == raw(SIGNATURE)


def test_jws_verify_eddsa(crypto: Crypto) -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": PUBLIC}
    assert asyncio.run(crypto.jws_verify("EdDSA", jwk, SIGNING_INPUT, raw(SIGNATURE)))
    assert not asyncio.run(crypto.jws_verify("EdDSA", jwk, SIGNING_INPUT + b"x",
                                             raw(SIGNATURE)))


@pytest.mark.parametrize(("alg", "jwk"), [
    ("ES256", {"kty": "OKP", "crv": "Ed25519", "x": PUBLIC}),  # key of another type
    ("RS256", {"kty": "RSA", "n": "AQAB", "e": "AQAB"}),  # absurd modulus
    ("ES256", {"kty": "EC", "crv": "P-256", "x": PUBLIC, "y": PUBLIC}),  # not on the curve
    ("HS256", {"kty": "oct"}),  # MACs never go through the port
    ("none", {"kty": "OKP", "crv": "Ed25519", "x": PUBLIC}),
])
def test_jws_verify_is_false_never_an_exception(crypto: Crypto, alg: str,
                                                jwk: dict[str, str]) -> None:
    assert asyncio.run(crypto.jws_verify(alg, jwk, SIGNING_INPUT, raw(SIGNATURE))) is False


def test_ed25519_seed_must_be_32_bytes(crypto: Crypto) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        asyncio.run(crypto.ed25519_sign(b"short", b"x"))
