"""A gate clock tests can move: grace windows, expiries and clock jumps without sleeping."""

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
