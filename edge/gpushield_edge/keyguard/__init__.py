"""Per-key state: the record, its limits, and the atomic admit/settle decisions."""

from __future__ import annotations

from typing import Protocol

from .grants import GrantRequest, GrantResult
from .records import AdmitRequest, AdmitResult, KeyLimits, KeyRecord, StoredResponse
from .settlement import SettlePolicy, SettleRequest, SettleResult


class KeyGuard(Protocol):
    """The gate's port to per-key state. Locally a direct call into `KeyGuardCore`; at the
    edge an RPC to the key's Durable Object. Either way one call decides a request."""

    async def admit(self, request: AdmitRequest) -> AdmitResult: ...

    async def grant(self, request: GrantRequest) -> GrantResult:
        """Token endpoint: authenticates the client and says what token it may have."""
        ...

    async def settle(self, request: SettleRequest) -> SettleResult:
        """Ends the call's lease, keeps its answer for idempotent replays, and charges its
        reservation once (keyguard/settlement.py)."""
        ...


__all__ = ["AdmitRequest", "AdmitResult", "GrantRequest", "GrantResult", "KeyGuard", "KeyLimits",
           "KeyRecord", "SettlePolicy", "SettleRequest", "SettleResult",
           "StoredResponse"]
