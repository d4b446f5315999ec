"""The local gate as an ASGI application (served by uvicorn in `gpushield dev`).

Only translation lives here: ASGI scope/receive/send to `GateRequest`/`GateResponse`. The body
is read with a hard cap so an oversized upload is refused without buffering it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..http import GateRequest, GateResponse
from .app import LocalGate

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class GateASGI:
    def __init__(self, factory: Callable[[], LocalGate]) -> None:
        self._factory = factory
        self.local: LocalGate | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.local is None:  # served without lifespan support
            self.local = self._factory()
        response = await self._handle(self.local, scope, receive)
        await send({
            "type": "http.response.start",
            "status": response.status,
            "headers": [(name.encode("latin-1"), value.encode("latin-1"))
                        for name, value in response.headers],
        })
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.local = self._factory()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.local is not None:
                    await self.local.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, local: LocalGate, scope: Scope, receive: Receive) -> GateResponse:
        headers, header_bytes = GateRequest.fold_headers(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
        )
        # Read no more than the largest body any route accepts: past it the request is
        # refused anyway, and the gate refuses it (with its audit event) from the flag.
        cap = local.config.largest_body
        declared = headers.get("content-length", "0")
        truncated = declared.isdigit() and int(declared) > cap
        body = bytearray()
        more = not truncated
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return GateResponse(499)
            body += message.get("body", b"")
            if len(body) > cap:
                truncated = True
                break
            more = message.get("more_body", False)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        client = scope.get("client")
        request = GateRequest(
            method=scope["method"],
            scheme=scope.get("scheme", "http"),
            authority=headers.get("host", "").lower(),
            path=raw_path.decode("latin-1").split("?", 1)[0],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=b"" if truncated else bytes(body),
            header_bytes=header_bytes,
            client_ip=client[0] if client else None,
            body_truncated=truncated,
        )
        return await local.gate.handle(request)
