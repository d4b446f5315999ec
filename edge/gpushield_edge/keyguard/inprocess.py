"""The KeyGuard port in-process: the local gate calls the core directly. The calls are
synchronous sqlite transactions of a few dozen microseconds, so running them on the event
loop is cheaper than a thread hop and keeps each decision atomic."""

from __future__ import annotations

from . import (
    AdmitRequest,
    AdmitResult,
    GrantRequest,
    GrantResult,
    SettlePolicy,
    SettleResult,
    StoredResponse,
)
from .grants import grant
from .guard import KeyGuardCore


class InProcessKeyGuard:
    def __init__(self, core: KeyGuardCore) -> None:
        self.core = core

    async def admit(self, request: AdmitRequest) -> AdmitResult:
        return await self.core.admit(request)

    async def grant(self, request: GrantRequest) -> GrantResult:
        return await grant(self.core, request)

    async def settle(
        self,
        key_id: str,
        lease_id: str,
        idempotency_key: str | None,
        response: StoredResponse | None,
        now: float,
        *,
        ran: bool,
        used_ms: int | None,
        policy: SettlePolicy | None = None,
    ) -> SettleResult:
        return self.core.settle(key_id, lease_id, idempotency_key, response, now, ran=ran,
                                used_ms=used_ms, policy=policy)
