"""A real HTTP backend that misbehaves on request: a RunPod-shaped `/runsync` served by
uvicorn that can report any executionTime (absurd ones too), answer 5xx, drop the connection
mid-response or never answer in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gpushield.devtools.serving import listening_socket, request_body, serve_asgi

Message = MutableMapping[str, Any]


class DropConnection(Exception):
    """Raised after the response started: uvicorn then closes the socket mid-body."""


@dataclass
class FaultyBackend:
    url: str = ""
    mode: str = "ok"  # ok | 5xx | 429 | drop | slow
    execution_time: Any = 100
    calls: int = 0

    async def __call__(self, scope: MutableMapping[str, Any],
                       receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        await request_body(receive)
        self.calls += 1
        if self.mode == "5xx":
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"upstream exploded"})
            return
        if self.mode == "429":  # throttled, with advice on when to retry
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"retry-after", b"7")]})
            await send({"type": "http.response.body", "body": b"slow down"})
            return
        if self.mode == "slow":
            await asyncio.sleep(3.0)
        body = json.dumps({"id": f"job-{self.calls}", "status": "COMPLETED",
                           "output": {"ok": True}, "executionTime": self.execution_time,
                           "delayTime": 3}).encode()
        if self.mode == "drop":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body[:10], "more_body": True})
            raise DropConnection
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def faulty_backend() -> Iterator[FaultyBackend]:
    sock, url = listening_socket()
    backend = FaultyBackend(url=url)
    with serve_asgi(backend, sock, name="faulty-backend", lifespan="off"):
        yield backend
