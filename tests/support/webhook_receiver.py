"""A real webhook receiver on uvicorn: records every POST, and can fail the first N with a
status (500, 429 + Retry-After) to exercise the alert sender's retries, or hold its answers
until released (to see a sender return while its requests are still in flight)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gpushield.devtools.serving import listening_socket, request_body, serve_asgi

Message = MutableMapping[str, Any]

# How long a held request waits for `release` at most: a test that never releases (or a
# sender that waits for the answer it is holding up) ends in a late answer, not a hang.
HOLD_LIMIT_S = 10.0


@dataclass
class WebhookReceiver:
    url: str = ""
    fail_first: int = 0
    fail_status: int = 500
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[tuple[float, str]] = field(default_factory=list)
    answered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._released.set()

    def hold(self) -> None:
        """From now on, requests are recorded on arrival but answered only after `release`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def __call__(self, scope: MutableMapping[str, Any],
                       receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        body = await request_body(receive)
        with self._lock:
            self.attempts.append((time.monotonic(), scope["path"]))
            failing = self.fail_first > 0
            if failing:
                self.fail_first -= 1
            else:
                self.received.append({"path": scope["path"], "body": json.loads(body)})
        if not self._released.is_set():
            await asyncio.to_thread(self._released.wait, HOLD_LIMIT_S)
        with self._lock:
            self.answered += 1  # counted before the answer leaves, never after it arrived
        status = self.fail_status if failing else 204
        headers = [(b"retry-after", b"0")] if failing and status == 429 else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        with self._lock:
            return list(self.received)


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    sock, url = listening_socket()
    receiver = WebhookReceiver(url=url)
    with serve_asgi(receiver, sock, name="webhook-receiver", lifespan="off"):
        try:
            yield receiver
        finally:
            receiver.release()  # held requests finish before the server stops
