"""The gate's ports: everything it needs from the runtime it runs in.

The pipeline never imports httpx, sqlite3, `js` or `cryptography`; it talks to these small
protocols. Two runtimes implement them: `runtime_local` (CPython: httpx, sqlite3, asyncio) and
`workers` (Pyodide: js.fetch, WebCrypto, Durable Objects, ctx.waitUntil).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (signature windows, key expiry)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for latencies and deadlines."""

    async def sleep(self, seconds: float) -> None: ...


class Crypto(Protocol):
    """Primitives that are slow in WebAssembly or absent from the standard library.

    Async because WebCrypto (`crypto.subtle`) is: at the edge these run natively outside the
    Python interpreter, and locally they are plain calls into `cryptography`/hashlib.
    """

    async def digest(self, algorithm: str, data: bytes) -> bytes:
        """RFC 9530 name ("sha-256" or "sha-512") → digest of `data`."""

    async def ed25519_verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        """True only for a valid signature; False (never an exception) otherwise."""

    async def ed25519_public_key(self, seed: bytes) -> bytes:
        """The 32-byte public key of a 32-byte Ed25519 seed (RFC 8032 §5.1.5).

        Used to publish the gate's token-signing keys in its JWKS. At the edge: import the seed
        as PKCS#8 (the fixed prefix 302e020100300506032b657004220420 followed by the seed) with
        `crypto.subtle.importKey("pkcs8", …, "Ed25519", true, ["sign"])`, export it as "jwk"
        and base64url-decode its `x`. Raises ValueError for a seed that is not 32 bytes."""

    async def ed25519_sign(self, seed: bytes, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `data` under the 32-byte seed (RFC 8032 §5.1.6);
        the gate signs its access tokens with it (JWS alg EdDSA, RFC 8037 §3.1). At the edge:
        the PKCS#8 import above, then `crypto.subtle.sign("Ed25519", key, data)`."""

    async def jws_verify(
        self, alg: str, jwk: Mapping[str, str], data: bytes, signature: bytes
    ) -> bool:
        """Verifies a JWS signature (RFC 7518 §3) with a public key given as a JWK.

        `alg` is one of RS256/384/512 (RSASSA-PKCS1-v1_5), PS256/384/512 (RSASSA-PSS, MGF1
        with the same hash, salt length = hash length), ES256/384/512 (ECDSA on P-256/384/521,
        `signature` is the fixed-length R||S of RFC 7518 §3.4, never DER) or EdDSA (Ed25519,
        RFC 8037). `jwk` holds only public members — kty, crv, x, y, n, e — already validated
        by `tokens.jwk` (type, curve and sizes agree with `alg`). At the edge this is
        `importKey("jwk", jwk, params, false, ["verify"])` then `verify(params, …)`; an
        invalid point or key is simply an unverifiable signature. Returns True only for a
        valid signature; False (never an exception) otherwise, including an unknown `alg`."""

    async def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Encrypts key material at rest under the key-encryption key (AEAD)."""

    async def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        """Inverse of `seal`; raises ValueError if tampered or under another KEK."""


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


UpstreamFailure = Literal["connect", "timeout", "protocol"]


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer in time.

    `kind` decides the catalog code: connect → backend_unavailable, timeout → backend_timeout,
    protocol (connection dropped mid-response, unreadable answer) → backend_failed.
    """

    def __init__(self, kind: UpstreamFailure, message: str = "") -> None:
        super().__init__(message or kind)
        self.kind: UpstreamFailure = kind


class Upstream(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Sends one request; raises UpstreamError, never anything else, on transport faults."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line per request. Built only from fields that are safe to keep: no secret,
    signature, token or prompt text ever reaches this type."""

    ts: float
    request_id: str
    route: str
    decision: Literal["allow", "deny", "error"]
    stage: str
    status: int
    code: str | None
    latency_ms: float
    key_id: str | None = None
    model: str | None = None
    backend_job_id: str | None = None
    backend_ran: bool = False
    execution_ms: int | None = None
    client_ip: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def document(self, *, omit_unset: bool = False) -> dict[str, Any]:
        """The fields as a JSON-ready mapping, read shallowly: `dataclasses.asdict`
        deep-copies and costs more than the rest of the gate's decision. `omit_unset`
        leaves out fields that are None or empty."""
        if omit_unset:
            return {name: value for name in _AUDIT_FIELDS
                    if (value := getattr(self, name)) is not None and value != {}}
        return {name: getattr(self, name) for name in _AUDIT_FIELDS}


_AUDIT_FIELDS = tuple(item.name for item in fields(AuditEvent))


class AuditSink(Protocol):
    async def write(self, event: AuditEvent) -> None:
        """Records one event. Called on the request path, so it must not wait on the
        network: a sink that ships events elsewhere queues them and sends via Background."""


class Background(Protocol):
    """Work that must finish but need not delay the response (ctx.waitUntil at the edge)."""

    def defer(self, work: Awaitable[None]) -> None: ...
