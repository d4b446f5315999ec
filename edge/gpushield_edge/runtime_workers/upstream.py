"""The Upstream port on `fetch`, with `AbortSignal.timeout` as the deadline.

`asyncio.wait_for` around a fetch only stops waiting — the subrequest keeps running (and
keeps the GPU job's HTTP call open). An abort signal cancels the fetch itself, so a deadline
here is a real deadline.
"""

from __future__ import annotations

from typing import Any

import js  # type: ignore[import-not-found]

from ..ports import UpstreamError, UpstreamRequest, UpstreamResponse
from .jsbridge import buffer_bytes, js_object, js_value


def _failure_kind(error: BaseException) -> str:
    name = str(getattr(error, "name", "")) or type(error).__name__
    text = str(error)
    if "TimeoutError" in name or "TimeoutError" in text or "AbortError" in name:
        return "timeout"
    return "connect"


class FetchUpstream:
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        init: dict[str, Any] = {
            "method": request.method,
            "headers": js_object(dict(request.headers)),
            "signal": js.AbortSignal.timeout(max(1, int(request.timeout_s * 1000))),
        }
        if request.body is not None:
            init["body"] = js_value(request.body)
        try:
            response = await js.fetch(request.url, js_object(init))
        except Exception as error:
            raise UpstreamError(_failure_kind(error)) from None  # type: ignore[arg-type]
        try:
            body = await buffer_bytes(response.arrayBuffer())
        except Exception as error:
            kind = _failure_kind(error)
            raise UpstreamError("timeout" if kind == "timeout" else "protocol") from None
        headers = {str(name).lower(): str(value) for name, value in response.headers.entries()}
        return UpstreamResponse(int(response.status), headers, body)
