"""Clock, audit sink and background work at the edge."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable

import js  # type: ignore[import-not-found]

from ..ports import AuditEvent


class WorkersClock:
    """`time.time()` is `Date.now()` in Workers: it does not advance during pure CPU work
    (a Spectre mitigation), which is fine for signature windows and key expiry."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ConsoleAuditSink:
    """One JSON line per request on the Worker's console: Workers Logs and Logpush collect
    it with no extra subrequest on the request path. AuditEvent carries no secrets."""

    async def write(self, event: AuditEvent) -> None:
        js.console.log(json.dumps({"gpushield_audit": event.document()}, separators=(",", ":")))


class WaitUntilBackground:
    """Work that must finish after the response: handed to the current request's
    `ctx.waitUntil` (found through `workers.wait_until`, which is request-scoped)."""

    def defer(self, work: Awaitable[None]) -> None:
        from workers import wait_until  # type: ignore[import-not-found]

        wait_until(asyncio.ensure_future(work))
