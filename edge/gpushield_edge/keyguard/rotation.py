"""Key lifecycle inside the guard: rotation with a grace window, and what a token's version
means.

Rotation generates a new secret beside the guard (it leaves once, to the operator), makes it
the key's secret, and keeps the previous sealed secret verifying until `prev_valid_until`:
clients switch over during the grace window, after which the old secret fails. The key's
version goes up, as with every lifecycle change (revoke, quarantine, restore), so every access
token minted before it is refused on its very next use (token_revoked) — a holder of the new
secret (or, during grace, of the old one) simply gets a fresh token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpushield_wire import algorithms, credentials

from ..ports import Crypto
from .records import AdmitRequest, AdmitResult
from .storage import SqlStorage

MAX_GRACE_S = 30 * 86400.0


class RotationError(Exception):
    """A rotation that cannot be done (unknown key, unsupported algorithm, bad grace)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def live_secrets(
    sealed: Any, prev_sealed: Any, prev_valid_until: Any, now: float
) -> Iterator[bytes]:
    """The sealed secrets that verify now: the current one, then (in its grace window) the
    previous one. Each comparison is constant-time; whether the second was tried only tells
    a signer which of its own two secrets it used."""
    yield bytes(sealed)
    if prev_sealed is not None and prev_valid_until is not None and now < float(
            prev_valid_until):
        yield bytes(prev_sealed)


def bearer_version(storage: SqlStorage, request: AdmitRequest) -> AdmitResult | int:
    """A bearer request was verified by the gate; the guard only insists that the key has
    not changed since the token was minted. A changed key that is no longer active is left to
    `_decide`, which names the status (key_revoked, key_quarantined) rather than the token."""
    rows = storage.query("SELECT version, status FROM keys WHERE key_id = ?", (request.key_id,))
    if not rows:
        return AdmitResult("refused", code="key_unknown")
    version, status = int(rows[0][0]), rows[0][1]
    if (request.token_version is not None and request.token_version != version
            and status == "active"):
        return AdmitResult("refused", code="token_revoked")
    return version


async def rotate_key(
    storage: SqlStorage, crypto: Crypto, key_id: str, grace_s: float, now: float
) -> tuple[bytes, float | None]:
    """Replaces the key's secret; returns (new secret, end of the old one's grace or None)."""
    if not 0 <= grace_s <= MAX_GRACE_S:
        raise RotationError(f"grace must be between 0 and {int(MAX_GRACE_S)} seconds")
    rows = storage.query("SELECT alg FROM keys WHERE key_id = ?", (key_id,))
    if not rows:
        raise RotationError(f"no key {key_id}", missing=True)
    if rows[0][0] != algorithms.HMAC_SHA256:
        raise RotationError("only gate-issued (hmac-sha256) keys can be rotated here; an "
                            "ed25519 key's holder makes a new key pair")
    secret = credentials.new_secret()
    sealed = await crypto.seal(secret, key_id.encode())
    until = now + grace_s if grace_s > 0 else None

    def work() -> None:
        if not storage.query("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)):
            raise RotationError(f"no key {key_id}", missing=True)
        storage.query(
            "UPDATE keys SET prev_sealed_secret = CASE WHEN ? IS NULL THEN NULL "
            "ELSE sealed_secret END, prev_valid_until = ?, sealed_secret = ?, "
            "version = version + 1 WHERE key_id = ?",
            (until, until, sealed, key_id),
        )

    storage.atomic(work)
    return secret, until
