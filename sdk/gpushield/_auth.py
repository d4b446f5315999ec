"""`SignatureAuth`: RFC 9421 request signing as an `httpx.Auth`.

One generator (`auth_flow`) serves `httpx.Client` and `httpx.AsyncClient` alike, because the
client drives the I/O and the flow only edits the request (httpx's own `DigestAuth` is the
model). `requires_request_body = True` makes httpx read the body before the flow runs, since
the Content-Digest (RFC 9530) must cover it and the signature must cover the digest.

httpx runs the flow once per `send`, so every attempt of a retried call gets its own
`created` and nonce — a retry is a new signature, never a replay the gate would refuse —
while the Idempotency-Key, set by the caller, stays the same.

What is signed is derived from the `httpx.Request` exactly as it goes on the wire:
`@authority` is the URL's netloc (what httpx sends as Host, default port dropped), `@path` and
`@query` are the raw, still percent-encoded, target split at the first `?`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

from gpushield_wire import algorithms, digest, signing
from gpushield_wire.credentials import parse_secret

__all__ = ["SignatureAuth"]

# The only fields the profile covers; copying just these keeps the hot path short.
_COVERED_FIELDS = {
    name.encode(): name for name in ("content-digest", "content-type", "idempotency-key")
}


class _CryptographyPort:
    """Ed25519 for the contract's `CryptoPort`, via `cryptography` (CPython only)."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key

    def ed25519_sign(self, private_key: bytes, data: bytes) -> bytes:
        signature: bytes = self._key.sign(data)
        return signature

    def ed25519_verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


def _ed25519_key(private_key: Any) -> tuple[Any, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(private_key, bytes | bytearray):
        key = Ed25519PrivateKey.from_private_bytes(bytes(private_key))
    elif isinstance(private_key, Ed25519PrivateKey):
        key = private_key
    else:
        raise TypeError("private_key must be an Ed25519PrivateKey or its 32-byte seed")
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return key, seed


class SignatureAuth(httpx.Auth):
    """Signs each request with gpushield's RFC 9421 profile (label `gpushield`).

    `secret` is the `gss_...` text or the raw 32 bytes (HMAC-SHA256); for `alg="ed25519"` pass
    `private_key` (an `Ed25519PrivateKey` or its 32-byte seed) instead. `validity_s` is the
    signature's lifetime (`expires - created`); the gate refuses long windows, so keep it
    short. `clock` returns epoch seconds (injectable for tests).

    The secret is kept in a private attribute and never appears in `repr`, `str`, logs or
    exceptions raised here.
    """

    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        secret: str | bytes | None = None,
        *,
        alg: str = algorithms.HMAC_SHA256,
        private_key: Any = None,
        validity_s: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if alg not in algorithms.ALLOWED_ALGORITHMS:
            raise ValueError(f"alg must be one of {algorithms.ALLOWED_ALGORITHMS}")
        if validity_s <= 0:
            raise ValueError("validity_s must be positive")
        self._crypto: _CryptographyPort | None = None
        if alg == algorithms.ED25519:
            if private_key is None:
                raise ValueError("ed25519 signing needs private_key")
            key_object, self._key = _ed25519_key(private_key)
            self._crypto = _CryptographyPort(key_object)
        elif isinstance(secret, str):
            self._key = parse_secret(secret)  # its errors never echo the secret
        elif isinstance(secret, bytes | bytearray):
            if not secret:
                raise ValueError("secret must not be empty")
            self._key = bytes(secret)
        else:
            raise ValueError("hmac-sha256 signing needs secret")
        self.key_id = key_id
        self.alg = alg
        self.validity_s = validity_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"SignatureAuth(key_id={self.key_id!r}, alg={self.alg!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would copy the secret somewhere we cannot see; refuse.
        raise TypeError("SignatureAuth holds a secret and cannot be pickled")

    def sign(self, request: httpx.Request) -> None:
        """Adds Content-Digest (when there is a body), Signature-Input and Signature."""
        headers = request.headers
        # One pass over the raw list: httpx's name lookups each rescan it, lowercasing.
        covered: dict[str, str] = {}
        for raw_name, raw_value in headers.raw:
            name = _COVERED_FIELDS.get(raw_name.lower())
            if name is not None:
                value = raw_value.decode(headers.encoding)
                covered[name] = f"{covered[name]}, {value}" if name in covered else value
        body = request.content
        if body:
            if "content-type" not in covered:
                raise ValueError("a signed request with a body needs a Content-Type")
            covered["content-digest"] = headers["content-digest"] = digest.content_digest(body)
        path, _, query = request.url.raw_path.partition(b"?")
        parts = signing.RequestParts(
            method=request.method,
            authority=request.url.netloc.decode("ascii").lower(),
            path=path.decode("ascii"),
            query=query.decode("ascii"),
            headers=covered,
        )
        created = int(self._clock())
        signature_input, signature = signing.sign_request(
            parts,
            key_id=self.key_id,
            alg=self.alg,
            key=self._key,
            created=created,
            expires=created + self.validity_s,
            nonce=signing.new_nonce(),
            crypto=self._crypto,
        )
        headers["signature-input"] = signature_input  # (Headers.update costs 4x two sets)
        headers["signature"] = signature

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
