"""Settlement: what happens in the key guard when a call's answer is known.

One transaction ends the concurrency lease (`KeyGuardCore._complete_rows`), charges the
reservation once (`budget.settle`), records the alert thresholds it crossed
(`alerts.thresholds`) and feeds the anomaly guard, which may quarantine the key (`anomaly`).
Its result is plain data (it crosses the guard's RPC boundary as JSON): what was charged, the
alert events for the gate to send after the response, and the quarantine, if any.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from ..alerts import thresholds as alert_thresholds
from ..anomaly import AnomalyPolicy, observe
from . import budget
from .budget import DEFAULT_THRESHOLDS, Query
from .records import StoredResponse


@dataclass(frozen=True, slots=True)
class SettlePolicy:
    """The gate's settings that settlement applies (from the gate config, per call)."""

    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    anomaly: AnomalyPolicy = field(default_factory=AnomalyPolicy)

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": list(self.thresholds), "anomaly": self.anomaly.to_dict()}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SettlePolicy:
        return cls(tuple(int(t) for t in document.get("thresholds", DEFAULT_THRESHOLDS)),
                   AnomalyPolicy.from_dict(dict(document.get("anomaly", {}))))


@dataclass(frozen=True, slots=True)
class SettleRequest:
    """One finished call as the gate reports it to the key's guard: which lease ends, the
    answer to keep for idempotent replays (None when the backend never ran), and what to
    charge — the backend's reported time, else the gate's measure (None: the worst case)."""

    key_id: str
    lease_id: str
    idempotency_key: str | None
    response: StoredResponse | None
    now: float
    ran: bool
    used_ms: int | None
    policy: SettlePolicy = field(default_factory=SettlePolicy)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able except `response` (the RPC encoder carries its bytes)."""
        return {"key_id": self.key_id, "lease_id": self.lease_id,
                "idempotency_key": self.idempotency_key, "response": self.response,
                "now": self.now, "ran": self.ran, "used_ms": self.used_ms,
                "policy": _policy_document(self.policy)}


@lru_cache(maxsize=8)
def _policy_document(policy: SettlePolicy) -> dict[str, Any]:
    """The policy comes from the gate's config, the same object call after call: its JSON
    form is built once, not on every settle the edge sends to a key's guard. (Read only.)"""
    return policy.to_dict()


@dataclass(frozen=True, slots=True)
class SettleResult:
    charged_gpu_ms: int | None = None
    charged_micros: int | None = None
    # False for a duplicate settle (nothing changed) or an unknown reservation.
    applied: bool = False
    alerts: tuple[dict[str, Any], ...] = ()
    # The anomaly rule that quarantined the key in this settlement.
    quarantined: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> SettleResult:
        return cls(document.get("charged_gpu_ms"), document.get("charged_micros"),
                   bool(document.get("applied")), tuple(document.get("alerts", ())),
                   document.get("quarantined"))


def settle_in_tx(query: Query, key_id: str, res_id: str, ran: bool, used_ms: int | None,
                 now: float, policy: SettlePolicy) -> SettleResult:
    settled = budget.settle(query, key_id, res_id, ran, used_ms, now)
    if settled is None:
        return SettleResult()
    if not settled.applied:
        return SettleResult(settled.charged_gpu_ms, settled.charged_micros, applied=False)
    events = alert_thresholds.crossed(query, key_id, settled, policy.thresholds, now)
    reason = observe(query, key_id, settled, now, policy.anomaly)
    if reason is not None:
        events.append({"kind": "key_quarantined", "key_id": key_id, "reason": reason,
                       "at": now})
    return SettleResult(settled.charged_gpu_ms, settled.charged_micros, True, tuple(events),
                        reason)
