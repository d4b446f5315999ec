"""Workers' Request/Response ↔ the gate's GateRequest/GateResponse.

The body is read with a cap: a declared Content-Length over the cap is refused unread, and a
streamed body stops being read at the cap (the gate then refuses it as body_too_large and
audits it), so an oversized upload never costs more than the cap in memory or CPU.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import js  # type: ignore[import-not-found]
from pyodide.ffi import jsnull  # type: ignore[import-not-found]

from ..http import GateRequest, GateResponse
from .jsbridge import js_value


async def _read_body(js_request: Any, cap: int, declared: str | None) -> tuple[bytes, bool]:
    if declared is not None and declared.isdigit() and int(declared) > cap:
        return b"", True
    stream = js_request.body
    if stream is None or stream is jsnull:
        return b"", False
    reader = stream.getReader()
    chunks: list[bytes] = []
    size = 0
    while True:
        step = await reader.read()
        if step.done:
            break
        chunk = bytes(step.value.to_bytes())
        size += len(chunk)
        if size > cap:
            await reader.cancel()
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


async def gate_request(js_request: Any, body_cap: int) -> GateRequest:
    url = urlsplit(str(js_request.url))
    pairs = [(str(name), str(value)) for name, value in js_request.headers.entries()]
    headers, size = GateRequest.fold_headers(pairs)
    body, truncated = await _read_body(js_request, body_cap, headers.get("content-length"))
    cf = getattr(js_request, "cf", None)
    country = getattr(cf, "country", None) if cf is not None else None
    return GateRequest(
        method=str(js_request.method).upper(),
        scheme=url.scheme or "https",
        authority=url.netloc,
        path=url.path or "/",
        query=url.query,
        headers=headers,
        body=body,
        header_bytes=size,
        client_ip=headers.get("cf-connecting-ip"),
        client_country=None if country is None else str(country),
        body_truncated=truncated,
    )


def js_response(response: GateResponse) -> Any:
    headers = js.Headers.new()
    for name, value in response.headers:
        headers.append(name, value)
    body = js_value(response.body) if response.body else None
    init = js.Object.new()
    init.status = response.status
    init.headers = headers
    return js.Response.new(body, init)
