"""The key guard: one key's state machine, decided atomically.

`admit` answers, in one transaction, every question that needs the key's state: does the
signature verify under the key's secret, is the key active and unexpired, may it call this
model, was this nonce seen, is this Idempotency-Key already answered or running, is there a
rate token, is there a free concurrency slot. Only if every answer is yes does it write
anything (nonce, bucket, lease, idempotency row), so a refused request changes nothing.
`complete` ends a lease and records the answer for idempotent replays.

The algorithms are written once against `SqlStorage` (see `storage.py`), like the `limits`
library writes its strategies against storage primitives.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpushield_wire import algorithms
from gpushield_wire.credentials import ADMIN_KEY_ID

from ..ports import Crypto
from . import account as account_budgets
from . import budget, rotation
from .account import AccountPort
from .records import (
    DEFAULT_TOKEN_TTL_S,
    AdmitRequest,
    AdmitResult,
    KeyLimits,
    KeyRecord,
    KeyStatus,
    StoredResponse,
)
from .schema import META, MIGRATIONS
from .settlement import SettleRequest, SettleResult, settle_in_tx
from .storage import SqlStorage

IDEMPOTENCY_TTL_S = 24 * 3600.0

_KEY_COLUMNS = (
    "k.key_id, k.alg, k.scopes, k.status, k.version, k.rate_per_minute, k.burst, "
    "k.max_concurrency, k.max_call_gpu_ms, k.expires_at, k.created_at, k.label, "
    "b.last_used_at, COALESCE(b.admitted_count, 0), k.token_ttl_s"
)
_KEY_FROM = "keys k LEFT JOIN buckets b ON b.key_id = k.key_id"
# Expired nonces and leases are swept every this many admissions (amortised, off most
# requests); expired rows are ignored by every check in between, so sweeping is only tidying.
SWEEP_EVERY = 256
# Opened secrets kept in memory (one per key; a Durable Object holds exactly one).
OPENED_CACHE_SIZE = 4096


class KeyGuardError(Exception):
    """Admin operation on a key that does not exist or cannot change that way."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing  # the key does not exist (vs. a change it cannot make)


def unusable(status: str, expires_at: Any, now: float) -> str | None:
    """Why a key may not be used at `now` (its refusal code), or None if it may. One rule
    for every way a key is used: signed calls, bearer calls and token requests."""
    if status == "quarantined":
        return "key_quarantined"
    if status != "active":
        return "key_revoked"
    if expires_at is not None and float(expires_at) <= now:
        return "key_expired"
    return None


def _record(row: tuple[Any, ...]) -> KeyRecord:
    (key_id, alg, scopes, status, version, rate, burst, concurrency, call_ms,
     expires_at, created_at, label, last_used_at, admitted, token_ttl) = row
    return KeyRecord(
        key_id=str(key_id),
        alg=str(alg),
        scopes=tuple(json.loads(str(scopes))),
        status=status,
        version=int(version),
        limits=KeyLimits(
            rate_per_minute=float(rate),
            burst=int(burst),
            max_concurrency=int(concurrency),
            max_call_gpu_ms=int(call_ms),
            token_ttl_s=DEFAULT_TOKEN_TTL_S if token_ttl is None else int(token_ttl),
        ),
        expires_at=None if expires_at is None else float(expires_at),
        created_at=float(created_at),
        label=str(label),
        last_used_at=None if last_used_at is None else float(last_used_at),
        admitted_count=int(admitted),
    )


@dataclass(slots=True)
class KeyGuardCore:
    storage: SqlStorage
    crypto: Crypto
    _admissions: int = 0
    # key id → (sealed secret, opened secret); see `_key_material`.
    _opened: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    # Where account-wide budget chunks come from (keyguard/account.py); None: no account cap.
    account: AccountPort | None = None

    def migrate(self) -> None:
        """Brings the store to the latest schema; safe to call on every start."""

        def work() -> None:
            query = self.storage.query
            query(META)
            rows = query("SELECT value FROM guard_meta WHERE name = 'schema_version'")
            current = int(rows[0][0]) if rows else 0
            for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    query(statement)
                query(
                    "INSERT INTO guard_meta (name, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (version,),
                )

        self.storage.atomic(work)

    # -- the hot path ------------------------------------------------------------------------

    async def admit(self, request: AdmitRequest) -> AdmitResult:
        """Authenticate (read-only, may await WebCrypto), then decide (one transaction).

        The decision re-reads the key and insists on the version the signature was checked
        against, so a key rotated or revoked in between is never admitted on the old check.
        """
        for _ in range(4):
            verdict = await self._authenticate(request)
            if isinstance(verdict, AdmitResult):
                return verdict
            result = self.storage.atomic(functools.partial(self._decide, request, verdict))
            if result is not None:
                # Short of an account budget chunk: lease one (outside the transaction), retry.
                if await account_budgets.top_up(self.storage, self.account, request, result):
                    continue
                return account_budgets.public(result)
        return AdmitResult("refused", code="guard_unavailable")

    async def _authenticate(self, request: AdmitRequest) -> AdmitResult | int:
        """The signature under the key's secret: the secret never leaves the guard.
        Returns the key version it verified against, or the refusal. During a rotation's
        grace window the previous secret verifies too (see `rotation.py`)."""
        if request.auth == "bearer":
            return rotation.bearer_version(self.storage, request)
        rows = self.storage.query(
            "SELECT alg, sealed_secret, version, prev_sealed_secret, prev_valid_until "
            "FROM keys WHERE key_id = ?", (request.key_id,)
        )
        if not rows:
            return AdmitResult("refused", code="key_unknown")
        alg, sealed, version, prev_sealed, prev_valid_until = rows[0]
        if alg != request.alg:
            return AdmitResult("refused", code="signature_alg_unsupported")
        valid = False
        for candidate in rotation.live_secrets(sealed, prev_sealed, prev_valid_until,
                                               request.now):
            try:
                key_material = await self._key_material(request.key_id, candidate)
            except ValueError:
                return AdmitResult("refused", code="guard_unavailable")
            if await self._verifies(request, key_material):
                valid = True
                break
        if not valid:
            return AdmitResult("refused", code="signature_invalid")
        if request.token_version is not None and request.token_version != int(version):
            return AdmitResult("refused", code="token_revoked")
        return int(version)

    async def _verifies(self, request: AdmitRequest, key_material: bytes) -> bool:
        if request.alg == algorithms.ED25519:
            return (len(key_material) == 32 and len(request.signature) == 64
                    and await self.crypto.ed25519_verify(
                        key_material, request.signature_base, request.signature))
        return algorithms.verify(
            request.alg, key_material, request.signature_base, request.signature)

    async def _key_material(self, key_id: str, sealed: bytes) -> bytes:
        """Opens a sealed secret once per process (or Durable Object instance). The sealed
        bytes are the cache key, so a rotated secret is never served from the cache; during
        a rotation's grace window both secrets are cached (the key id plus a hash of each)."""
        slot = f"{key_id}#{hash(sealed)}"
        cached = self._opened.get(slot)
        if cached is not None and cached[0] == sealed:
            return cached[1]
        material = await self.crypto.open(sealed, key_id.encode())
        if len(self._opened) >= OPENED_CACHE_SIZE:
            self._opened.pop(next(iter(self._opened)))
        self._opened[slot] = (sealed, material)
        return material

    def _decide(self, request: AdmitRequest, verified_version: int) -> AdmitResult | None:
        """Everything that needs the key's state, in one transaction; writes only on admit.
        None means the key changed since the signature was checked: authenticate again."""
        query = self.storage.query
        now = request.now
        rows = query(
            "SELECT scopes, status, version, rate_per_minute, burst, "
            "max_concurrency, max_call_gpu_ms, expires_at FROM keys WHERE key_id = ?",
            (request.key_id,),
        )
        if not rows:
            return AdmitResult("refused", code="key_unknown")
        (scopes, status, version, rate, burst, max_concurrency,
         max_call_gpu_ms, expires_at) = rows[0]
        if int(version) != verified_version:
            return None

        # 2. Is the key usable, and for this model.
        refusal = unusable(status, expires_at, now)
        if refusal is not None:
            return AdmitResult("refused", code=refusal)
        scope_list = json.loads(scopes)
        if "*" not in scope_list and request.model not in scope_list:
            return AdmitResult("refused", code="model_not_in_scope")

        # 3. Replay: a nonce is good once within its signature's validity (a bearer token
        # has no nonce: it is reused until it expires, and the version check above bounds it).
        if request.auth != "bearer" and query(
            "SELECT 1 FROM nonces WHERE key_id = ? AND nonce = ? AND expires_at >= ?",
            (request.key_id, request.nonce, now),
        ):
            return AdmitResult("refused", code="signature_replayed")

        # 4. Idempotency: an answered key replays its answer; a running one is a conflict.
        if request.idempotency_key is not None:
            found = query(
                "SELECT fingerprint, state, status, response_headers, response_body "
                "FROM idempotency WHERE key_id = ? AND idem_key = ? AND expires_at >= ?",
                (request.key_id, request.idempotency_key, now),
            )
            if found:
                fingerprint, state, stored_status, headers, body = found[0]
                if fingerprint != request.fingerprint:
                    return AdmitResult("refused", code="idempotency_key_reused")
                if state != "done":
                    return AdmitResult("refused", code="idempotency_in_progress", retry_after=1.0)
                self._remember_nonce(request)
                return AdmitResult(
                    "replay",
                    stored=StoredResponse.from_columns(int(stored_status), headers, body),
                    key_version=int(version),
                )

        # 5. Rate: a token bucket refilled continuously at rate_per_minute, capped at burst.
        refill_per_s = float(rate) / 60.0
        bucket = query(
            "SELECT tokens, updated_at FROM buckets WHERE key_id = ?", (request.key_id,)
        )
        if bucket:
            tokens, updated_at = float(bucket[0][0]), float(bucket[0][1])
            tokens = min(float(burst), tokens + max(0.0, now - updated_at) * refill_per_s)
        else:
            tokens = float(burst)
        limits = {"rate_per_minute": float(rate), "burst": float(burst), "remaining": tokens}
        if tokens < 1.0:
            wait = (1.0 - tokens) / refill_per_s if refill_per_s > 0 else 60.0
            limits["remaining"] = 0.0
            return AdmitResult("refused", code="rate_limited", retry_after=wait, limits=limits)

        # 6. Concurrency: live leases; an expired lease (a gate died mid-call) frees itself.
        (in_flight,) = query(
            "SELECT COUNT(*) FROM leases WHERE key_id = ? AND expires_at > ?",
            (request.key_id, now),
        )[0]
        if int(in_flight) >= int(max_concurrency):
            return AdmitResult("refused", code="concurrency_limited", retry_after=1.0,
                               limits=limits)

        # 7. Budgets: the call's worst case must fit every budget it counts towards.
        reservation = budget.plan(
            query, request.key_id, request.model, int(max_call_gpu_ms),
            budget.Price(request.micros_per_gpu_s, request.min_micros),
            budget.parse_specs(request.account_budgets), now)
        if isinstance(reservation, budget.BudgetRefusal):
            return AdmitResult("refused", code="budget_exceeded", limits=limits,
                               budget=reservation.details(now))

        # Every check passed: now, and only now, write.
        lease_id = secrets.token_hex(12)
        self._remember_nonce(request)
        query(
            "INSERT INTO buckets (key_id, tokens, updated_at, last_used_at, admitted_count) "
            "VALUES (?, ?, ?, ?, 1) ON CONFLICT (key_id) DO UPDATE SET "
            "tokens = excluded.tokens, updated_at = excluded.updated_at, "
            "last_used_at = excluded.last_used_at, admitted_count = admitted_count + 1",
            (request.key_id, tokens - 1.0, now, now),
        )
        query(
            "INSERT INTO leases (key_id, lease_id, expires_at) VALUES (?, ?, ?)",
            (request.key_id, lease_id, now + request.lease_ttl_s),
        )
        budget.reserve(query, request.key_id, lease_id, request.model, reservation, now,
                       now + request.lease_ttl_s, request.country)
        self._admissions += 1
        if self._admissions % SWEEP_EVERY == 0:
            budget.expire(query, request.key_id, now)
            query("DELETE FROM leases WHERE key_id = ? AND expires_at <= ?", (request.key_id, now))
            query("DELETE FROM nonces WHERE key_id = ? AND expires_at < ?", (request.key_id, now))
        if request.idempotency_key is not None:
            query(
                "INSERT INTO idempotency (key_id, idem_key, fingerprint, state, lease_id, "
                "expires_at) VALUES (?, ?, ?, 'running', ?, ?) "
                "ON CONFLICT (key_id, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint,"
                " state = 'running', lease_id = excluded.lease_id, status = NULL, "
                "response_headers = NULL, response_body = NULL, expires_at = excluded.expires_at",
                (request.key_id, request.idempotency_key, request.fingerprint or "", lease_id,
                 now + IDEMPOTENCY_TTL_S),
            )
        limits["remaining"] = tokens - 1.0
        return AdmitResult(
            "admitted",
            lease_id=lease_id,
            key_version=int(version),
            max_call_gpu_ms=int(max_call_gpu_ms),
            limits=limits,
            reserved_gpu_ms=reservation.gpu_ms,
            reserved_micros=reservation.micros,
        )

    def _remember_nonce(self, request: AdmitRequest) -> None:
        if request.auth == "bearer":
            return
        self.storage.query(
            "INSERT OR REPLACE INTO nonces (key_id, nonce, expires_at) VALUES (?, ?, ?)",
            (request.key_id, request.nonce, request.nonce_expires_at),
        )

    def complete(
        self,
        key_id: str,
        lease_id: str,
        idempotency_key: str | None,
        response: StoredResponse | None,
        now: float,
    ) -> None:
        """Ends a lease. With a response, an idempotent call's answer is kept for replays;
        without one (nothing ran, the caller may retry), its idempotency row is dropped."""
        self.storage.atomic(functools.partial(
            self._complete_rows, key_id, lease_id, idempotency_key, response, now))

    def _complete_rows(
        self,
        key_id: str,
        lease_id: str,
        idempotency_key: str | None,
        response: StoredResponse | None,
        now: float,
    ) -> None:
        query = self.storage.query
        query("DELETE FROM leases WHERE lease_id = ? AND key_id = ?", (lease_id, key_id))
        if idempotency_key is None:
            return
        if response is None:
            query(
                "DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND lease_id = ?",
                (key_id, idempotency_key, lease_id),
            )
            return
        query(
            "UPDATE idempotency SET state = 'done', status = ?, response_headers = ?, "
            "response_body = ?, expires_at = ? "
            "WHERE key_id = ? AND idem_key = ? AND lease_id = ?",
            (response.status, response.headers_json(), response.body,
             now + IDEMPOTENCY_TTL_S, key_id, idempotency_key, lease_id),
        )

    def settle(self, request: SettleRequest) -> SettleResult:
        """`complete` plus the charge (keyguard/settlement.py), in one transaction: the lease
        ends, the reservation is charged once, alerts and the anomaly guard see the charge."""

        def work() -> SettleResult:
            self._complete_rows(request.key_id, request.lease_id, request.idempotency_key,
                                request.response, request.now)
            return settle_in_tx(self.storage.query, request.key_id, request.lease_id,
                                request.ran, request.used_ms, request.now, request.policy)

        return self.storage.atomic(work)

    # -- administration ----------------------------------------------------------------------

    def set_budgets(self, key_id: str, specs: Sequence[budget.BudgetSpec]) -> None:
        """Replaces a key's budgets in one transaction (spend so far still counts)."""
        self.storage.atomic(lambda: budget.set_key_budgets(self.storage.query, key_id, specs))

    async def create_key(
        self,
        *,
        key_id: str,
        alg: str,
        key_material: bytes,
        scopes: tuple[str, ...],
        limits: KeyLimits,
        expires_at: float | None,
        now: float,
        label: str = "",
    ) -> KeyRecord:
        sealed = await self.crypto.seal(key_material, key_id.encode())

        def work() -> None:
            if self.storage.query("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)):
                raise KeyGuardError(f"key {key_id} already exists")
            self.storage.query(
                "INSERT INTO keys (key_id, alg, sealed_secret, scopes, status, version, "
                "rate_per_minute, burst, max_concurrency, max_call_gpu_ms, expires_at, "
                "created_at, label, token_ttl_s) "
                "VALUES (?, ?, ?, ?, 'active', 1, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, alg, sealed, json.dumps(list(scopes)), limits.rate_per_minute,
                 limits.burst, limits.max_concurrency, limits.max_call_gpu_ms, expires_at,
                 now, label, limits.token_ttl_s),
            )

        self.storage.atomic(work)
        return self.get_key(key_id)

    def get_key(self, key_id: str) -> KeyRecord:
        rows = self.storage.query(
            f"SELECT {_KEY_COLUMNS} FROM {_KEY_FROM} WHERE k.key_id = ?", (key_id,))  # noqa: S608 - constants
        if not rows:
            raise KeyGuardError(f"no key {key_id}", missing=True)
        return _record(rows[0])

    def list_keys(self) -> list[KeyRecord]:
        rows = self.storage.query(
            f"SELECT {_KEY_COLUMNS} FROM {_KEY_FROM} ORDER BY k.created_at")  # noqa: S608 - constants
        return [_record(row) for row in rows]

    def set_status(self, key_id: str, status: KeyStatus) -> KeyRecord:
        """Revocation is a row update inside the guard: the very next `admit` sees it."""

        def work() -> None:
            if not self.storage.query("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)):
                raise KeyGuardError(f"no key {key_id}", missing=True)
            self.storage.query(
                "UPDATE keys SET status = ?, version = version + 1 WHERE key_id = ?",
                (status, key_id),
            )

        self.storage.atomic(work)
        return self.get_key(key_id)

    def remember_admin_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        """Admin requests' nonces share the nonce table under a key id no API key can have."""

        def work() -> bool:
            if self.storage.query(
                "SELECT 1 FROM nonces WHERE key_id = ? AND nonce = ? AND expires_at >= ?",
                (ADMIN_KEY_ID, nonce, now),
            ):
                return False
            self.storage.query(
                "INSERT OR REPLACE INTO nonces (key_id, nonce, expires_at) VALUES (?, ?, ?)",
                (ADMIN_KEY_ID, nonce, expires_at),
            )
            return True

        return self.storage.atomic(work)

    def in_flight(self, key_id: str, now: float) -> int:
        (count,) = self.storage.query(
            "SELECT COUNT(*) FROM leases WHERE key_id = ? AND expires_at > ?", (key_id, now)
        )[0]
        return int(count)
