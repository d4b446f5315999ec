"""`Background` on asyncio: deferred work runs as tasks we keep references to (the event
loop holds only weak ones) and that `drain` can await at shutdown, so no audit line is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

logger = logging.getLogger("gpushield.gate")


class TaskBackground:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def defer(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("background task failed: %s", type(task.exception()).__name__)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
