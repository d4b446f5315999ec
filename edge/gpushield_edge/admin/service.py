"""The `KeyAdmin` port and its in-process implementation.

The CLI, the demo and the gate's admin API all manage keys through this one interface, so
"create a key" means the same thing locally (a row in `.gpushield/keys.db`) and at the edge
(a new Durable Object): the secret is generated beside the guard that will keep it, returned
exactly once, and never readable afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gpushield_wire import algorithms, credentials

from ..keyguard import rotation
from ..keyguard.budget import BudgetSpec, BudgetSpecError
from ..keyguard.guard import KeyGuardCore, KeyGuardError
from ..keyguard.records import KeyLimits, KeyRecord, KeyStatus
from ..keyguard.usage import key_usage
from ..ports import Clock

STATUSES: tuple[KeyStatus, ...] = ("active", "revoked", "quarantined")


class KeyAdminError(Exception):
    """An admin request that cannot be carried out (unknown key, bad field); the message is
    safe to show: it never contains a secret."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        # True when the key does not exist (404), False for an invalid request (400).
        self.missing = missing


@dataclass(frozen=True, slots=True)
class NewKey:
    scopes: tuple[str, ...]
    limits: KeyLimits = field(default_factory=KeyLimits)
    expires_at: float | None = None
    label: str = ""
    # GPU-time / money budgets per period (keyguard/budget.py).
    budgets: tuple[BudgetSpec, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "scopes": list(self.scopes),
            "limits": {
                "rate_per_minute": self.limits.rate_per_minute,
                "burst": self.limits.burst,
                "max_concurrency": self.limits.max_concurrency,
                "max_call_gpu_ms": self.limits.max_call_gpu_ms,
                "token_ttl_s": self.limits.token_ttl_s,
            },
            "expires_at": self.expires_at,
            "label": self.label,
            "budgets": [spec.to_dict() for spec in self.budgets],
        }

    @classmethod
    def from_dict(cls, document: Any) -> NewKey:
        """Validates an admin API body; every problem is a KeyAdminError naming the field."""
        if not isinstance(document, dict):
            raise KeyAdminError("body must be a JSON object")
        unknown = set(document) - {"scopes", "limits", "expires_at", "label", "budgets"}
        if unknown:
            raise KeyAdminError(f"unknown fields: {', '.join(sorted(unknown))}")
        scopes = document.get("scopes")
        if (not isinstance(scopes, list) or not scopes or len(scopes) > 64
                or not all(isinstance(s, str) and 0 < len(s) <= 128 for s in scopes)):
            raise KeyAdminError("scopes must be a non-empty list of model names (or '*')")
        limits_doc = document.get("limits", {})
        if not isinstance(limits_doc, dict):
            raise KeyAdminError("limits must be an object")
        defaults = KeyLimits()
        try:
            limits = KeyLimits(
                rate_per_minute=float(limits_doc.get("rate_per_minute", defaults.rate_per_minute)),
                burst=int(limits_doc.get("burst", defaults.burst)),
                max_concurrency=int(limits_doc.get("max_concurrency", defaults.max_concurrency)),
                max_call_gpu_ms=int(limits_doc.get("max_call_gpu_ms", defaults.max_call_gpu_ms)),
                token_ttl_s=int(limits_doc.get("token_ttl_s", defaults.token_ttl_s)),
            )
        except (TypeError, ValueError, OverflowError):
            raise KeyAdminError("limits must be numbers") from None
        if (not 0 < limits.rate_per_minute <= 1e6 or not 1 <= limits.burst <= 1_000_000
                or not 1 <= limits.max_concurrency <= 10_000
                or not 1 <= limits.max_call_gpu_ms <= 86_400_000
                or not 60 <= limits.token_ttl_s <= 900):
            raise KeyAdminError("limits are out of range")
        expires_at = document.get("expires_at")
        if expires_at is not None and (
                isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))):
            raise KeyAdminError("expires_at must be a Unix time or null")
        label = document.get("label", "")
        if not isinstance(label, str) or len(label) > 200:
            raise KeyAdminError("label must be a string of at most 200 characters")
        budgets_doc = document.get("budgets", [])
        if not isinstance(budgets_doc, list) or len(budgets_doc) > 16:
            raise KeyAdminError("budgets must be a list of at most 16 budgets")
        try:
            budgets = tuple(BudgetSpec.from_dict(item) for item in budgets_doc)
        except BudgetSpecError as error:
            raise KeyAdminError(f"budgets: {error}") from None
        if len({spec.budget_id for spec in budgets}) != len(budgets):
            raise KeyAdminError("budgets: budget_id values must be distinct")
        return cls(tuple(scopes), limits, None if expires_at is None else float(expires_at),
                   label, budgets)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: KeyRecord
    # The formatted secret (gss_…): shown to the operator once, stored nowhere in clear.
    secret: str


@dataclass(frozen=True, slots=True)
class RotatedKey:
    record: KeyRecord
    # The new formatted secret (gss_…): shown once, like a new key's.
    secret: str
    # Until when the previous secret still verifies (None: it stopped at once).
    previous_valid_until: float | None

    def __repr__(self) -> str:
        return f"RotatedKey(key_id={self.record.key_id!r}, version={self.record.version})"


@dataclass(frozen=True, slots=True)
class KeyView:
    record: KeyRecord
    in_flight: int


class KeyAdmin(Protocol):
    async def create(self, spec: NewKey) -> CreatedKey: ...

    async def list(self) -> list[KeyRecord]: ...

    async def get(self, key_id: str) -> KeyView: ...

    async def set_status(self, key_id: str, status: KeyStatus) -> KeyRecord: ...

    async def rotate(self, key_id: str, grace_s: float) -> RotatedKey:
        """A new secret; the old one keeps verifying for `grace_s` seconds, then fails."""
        ...
    async def usage(self, key_id: str, account_budgets: Sequence[BudgetSpec] = ()
                    ) -> dict[str, Any]:
        """Spend, open reservations and budgets of one key (keyguard/usage.py), with its
        share of the given account budgets."""

    async def set_budgets(self, key_id: str, budgets: Sequence[BudgetSpec]) -> None:
        """Replaces a key's budgets; what it spent so far in each period still counts."""

    async def remember_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        """Records an admin request's nonce; False if it was already used (a replay)."""


async def create_in(core: KeyGuardCore, spec: NewKey, now: float) -> CreatedKey:
    """Generates the key next to the guard that keeps it (one `KeyGuardCore`)."""
    secret = credentials.new_secret()
    record = await core.create_key(
        key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
        scopes=spec.scopes, limits=spec.limits, expires_at=spec.expires_at, now=now,
        label=spec.label,
    )
    if spec.budgets:
        core.set_budgets(record.key_id, spec.budgets)
    return CreatedKey(record, credentials.format_secret(secret))


class LocalKeyAdmin:
    """Keys in one local guard database (the `gpushield dev` gate and the CLI)."""

    def __init__(self, core: KeyGuardCore, clock: Clock) -> None:
        self.core = core
        self.clock = clock

    async def create(self, spec: NewKey) -> CreatedKey:
        return await create_in(self.core, spec, self.clock.now())

    async def list(self) -> list[KeyRecord]:
        return self.core.list_keys()

    async def get(self, key_id: str) -> KeyView:
        record = self._known(key_id)
        return KeyView(record, self.core.in_flight(key_id, self.clock.now()))

    async def set_status(self, key_id: str, status: KeyStatus) -> KeyRecord:
        self._known(key_id)
        return self.core.set_status(key_id, status)

    async def rotate(self, key_id: str, grace_s: float) -> RotatedKey:
        self._known(key_id)
        try:
            secret, until = await rotation.rotate_key(
                self.core.storage, self.core.crypto, key_id, grace_s, self.clock.now())
        except rotation.RotationError as error:
            raise KeyAdminError(str(error), missing=error.missing) from None
        return RotatedKey(self.core.get_key(key_id), credentials.format_secret(secret), until)

    async def remember_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        return self.core.remember_admin_nonce(nonce, expires_at, now)

    async def usage(self, key_id: str, account_budgets: Sequence[BudgetSpec] = ()
                    ) -> dict[str, Any]:
        self._known(key_id)
        return key_usage(self.core.storage, key_id, self.clock.now(), account_budgets)

    async def set_budgets(self, key_id: str, budgets: Sequence[BudgetSpec]) -> None:
        self._known(key_id)
        self.core.set_budgets(key_id, budgets)

    def _known(self, key_id: str) -> KeyRecord:
        try:
            return self.core.get_key(key_id)
        except KeyGuardError:
            raise KeyAdminError(f"no key {key_id}", missing=True) from None
