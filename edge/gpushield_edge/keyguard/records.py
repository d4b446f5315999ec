"""Values that cross the key guard's boundary. None of them carries a secret: a key record
leaves the guard without its sealed secret, and a request brings the signature to the guard
rather than taking the secret out of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

KeyStatus = Literal["active", "revoked", "quarantined"]
DEFAULT_TOKEN_TTL_S = 600


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Per-key limits, chosen at creation; defaults suit a developer's key."""

    rate_per_minute: float = 60.0
    burst: int = 10
    max_concurrency: int = 4
    # GPU time one call may use; handed to the backend (RunPod policy.executionTimeout).
    max_call_gpu_ms: int = 60_000
    # Lifetime of the access tokens this key is granted at /oauth/token (at most 900 s).
    token_ttl_s: int = DEFAULT_TOKEN_TTL_S


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    alg: str
    scopes: tuple[str, ...]
    status: KeyStatus
    version: int
    limits: KeyLimits
    expires_at: float | None
    created_at: float
    label: str = ""
    last_used_at: float | None = None
    admitted_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (for `gpushield keys … --json`)."""
        document = asdict(self)
        document["scopes"] = list(self.scopes)
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> KeyRecord:
        """Inverse of `to_dict` (guard RPC results, admin API answers)."""
        return cls(
            key_id=str(document["key_id"]),
            alg=str(document["alg"]),
            scopes=tuple(document["scopes"]),
            status=document["status"],
            version=int(document["version"]),
            limits=KeyLimits(**document["limits"]),
            expires_at=document.get("expires_at"),
            created_at=float(document["created_at"]),
            label=str(document.get("label", "")),
            last_used_at=document.get("last_used_at"),
            admitted_count=int(document.get("admitted_count", 0)),
        )


@dataclass(frozen=True, slots=True)
class AdmitRequest:
    """Everything the guard needs to decide one request in one round trip.

    The signature base and signature travel to the guard instead of the secret travelling to
    the gate: the HMAC secret never leaves the guard.
    """

    key_id: str
    alg: str
    signature_base: bytes
    signature: bytes
    model: str
    nonce: str
    nonce_expires_at: float
    now: float
    lease_ttl_s: float
    idempotency_key: str | None = None
    # Hash of what the request asks for (method, path, body digest): the same Idempotency-Key
    # with a different request is refused rather than answered with the other's result.
    fingerprint: str | None = None
    # "signature": RFC 9421, verified here; "bearer": a token the gate already verified, so
    # there is no signature and no nonce (a token is used many times by design).
    auth: str = "signature"
    # The key version a token was minted under: any change since (revoke, rotate, restore)
    # refuses it with token_revoked. None when no token is involved.
    token_version: int | None = None
    # The model's price (budget.Price, integer micro-units) and the account budgets this call
    # counts towards (budget.BudgetSpec dicts), from the gate's config: see keyguard/budget.py.
    micros_per_gpu_s: int = 0
    min_micros: int = 0
    account_budgets: tuple[dict[str, Any], ...] = ()
    # ISO country of the caller when the edge knows it (anomaly.py's new-country rule).
    country: str | None = None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def headers_json(self) -> str:
        return json.dumps([list(pair) for pair in self.headers])

    @classmethod
    def from_columns(cls, status: int, headers: str, body: bytes) -> StoredResponse:
        return cls(status, tuple((name, value) for name, value in json.loads(headers)), bytes(body))


@dataclass(frozen=True, slots=True)
class AdmitResult:
    """`admitted`: go ahead under `lease_id`; `replay`: answer with `stored`;
    `refused`: answer with `code` (and `retry_after` seconds for 429s)."""

    outcome: Literal["admitted", "replay", "refused"]
    code: str | None = None
    retry_after: float | None = None
    lease_id: str | None = None
    key_version: int | None = None
    max_call_gpu_ms: int | None = None
    stored: StoredResponse | None = None
    limits: dict[str, float] = field(default_factory=dict)
    # Admitted: what was reserved (GPU ms, micro-units). Refused with budget_exceeded: which
    # budget and when it resets (safe to show the caller).
    reserved_gpu_ms: int | None = None
    reserved_micros: int | None = None
    budget: dict[str, Any] = field(default_factory=dict)
