"""The Clock port on CPython: the process's own clocks and asyncio's sleep."""

from __future__ import annotations

import asyncio
import time


class SystemClock:
    """Wall clock for signature windows and expiry, monotonic clock for deadlines (immune to
    NTP steps), asyncio.sleep so waiting never blocks the event loop."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
