"""Gate clocks for tests: one that can move (grace windows, expiries and clock jumps without
sleeping) and one that stands still."""

from __future__ import annotations

import asyncio
import time


class OffsetClock:
    """The gate's Clock port, `offset` seconds ahead of real time (0 by default)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FixedClock:
    """The gate's Clock port stopped at `at` (epoch seconds); its sleeps return at once."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None
