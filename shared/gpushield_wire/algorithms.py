"""The signature algorithms gpushield's profile allows, and nothing else.

RFC 9421 §3.3 registers six algorithms; the profile takes two. `hmac-sha256` (§3.3.3) is for
keys the gate issues (a shared secret, verifiable in the standard library); `ed25519`
(§3.3.6) is for keys whose private half never leaves the client. RSA and ECDSA are refused
outright: an allowlist is how algorithm-confusion attacks are ruled out (§7.3.6), and every
extra algorithm is extra parsing of attacker-chosen key material.

Ed25519 is not in the standard library, and this package must run under Pyodide, so it goes
through a `CryptoPort`: `cryptography` in CPython, WebCrypto in the Workers runtime.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final, Protocol

__all__ = [
    "ALLOWED_ALGORITHMS",
    "ED25519",
    "HMAC_SHA256",
    "CryptoPort",
    "UnsupportedAlgorithm",
    "sign",
    "verify",
]

HMAC_SHA256: Final = "hmac-sha256"
ED25519: Final = "ed25519"
ALLOWED_ALGORITHMS: Final = (HMAC_SHA256, ED25519)

_ED25519_SEED_BYTES = 32
_ED25519_PUBLIC_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64


class UnsupportedAlgorithm(ValueError):
    """The algorithm is not on the profile's allowlist."""


class CryptoPort(Protocol):
    def ed25519_sign(self, private_key: bytes, data: bytes) -> bytes:
        """Signs with the 32-byte seed (RFC 8032 §5.1.5), returning 64 bytes."""

    def ed25519_verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        """True only for a valid signature; False (never an exception) otherwise."""


def _port(crypto: CryptoPort | None) -> CryptoPort:
    if crypto is None:
        raise RuntimeError("ed25519 needs a CryptoPort: the standard library has no Ed25519")
    return crypto


def sign(alg: str, key: bytes, data: bytes, crypto: CryptoPort | None = None) -> bytes:
    if alg == HMAC_SHA256:
        return hmac.new(key, data, hashlib.sha256).digest()
    if alg == ED25519:
        if len(key) != _ED25519_SEED_BYTES:
            raise ValueError("an ed25519 private key is a 32-byte seed")
        return _port(crypto).ed25519_sign(key, data)
    raise UnsupportedAlgorithm("signature algorithm is not allowed")


def verify(
    alg: str, key: bytes, data: bytes, signature: bytes, crypto: CryptoPort | None = None
) -> bool:
    if alg == HMAC_SHA256:
        expected = hmac.new(key, data, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)
    if alg == ED25519:
        port = _port(crypto)
        # Wrong lengths are simply invalid; they never reach the backend's key parser.
        if len(key) != _ED25519_PUBLIC_BYTES or len(signature) != _ED25519_SIGNATURE_BYTES:
            return False
        return bool(port.ed25519_verify(key, data, signature))
    raise UnsupportedAlgorithm("signature algorithm is not allowed")
