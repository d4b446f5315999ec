"""The KeyGuard port in-process: the local gate calls the core directly. The calls are
synchronous sqlite transactions of a few dozen microseconds, so running them on the event
loop is cheaper than a thread hop and keeps each decision atomic."""

from __future__ import annotations

from . import (
    AdmitRequest,
    AdmitResult,
    GrantRequest,
    GrantResult,
    SettleRequest,
    SettleResult,
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

    async def settle(self, request: SettleRequest) -> SettleResult:
        return self.core.settle(request)
