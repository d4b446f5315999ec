"""The Upstream port on CPython, over one pooled httpx.AsyncClient.

One client per gate process keeps TLS connections to the GPU platforms alive between calls,
which matters more than anything else for the latency the gate adds. Every httpx transport
fault is translated into UpstreamError(kind) here, so the pipeline never sees httpx.
"""

from __future__ import annotations

import asyncio

import httpx

from ..ports import UpstreamError, UpstreamRequest, UpstreamResponse


class HttpxUpstream:
    """Sends UpstreamRequests with a total (not per-phase) timeout of `request.timeout_s`.

    httpx timeouts apply to each phase separately (connect, each read, ...), so a slowly
    trickling answer could outlive the caller's deadline; the request is therefore also bounded
    as a whole with asyncio.timeout. Redirects are not followed: a GPU platform that redirects
    the gate's authenticated call elsewhere is treated as an answer, not obeyed. Proxy settings
    from the environment are ignored unless `trust_env=True`, so loopback test backends and
    platform keys never travel through an unexpected proxy.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        trust_env: bool = False,
    ) -> None:
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
            ),
            follow_redirects=False,
            trust_env=trust_env,
        )

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        timeout = max(request.timeout_s, 0.001)
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    content=request.body,
                    timeout=httpx.Timeout(timeout),
                )
        except TimeoutError:
            raise UpstreamError("timeout", "no complete answer within the deadline") from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
            raise UpstreamError("connect", type(exc).__name__) from None
        except httpx.UnsupportedProtocol as exc:
            raise UpstreamError("connect", type(exc).__name__) from None
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
            raise UpstreamError("timeout", type(exc).__name__) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise UpstreamError("protocol", type(exc).__name__) from None
        except httpx.RequestError as exc:
            # WriteError, LocalProtocolError, DecodingError, CloseError, TooManyRedirects: the
            # exchange broke part-way, so the answer is unusable.
            raise UpstreamError("protocol", type(exc).__name__) from None
        headers: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return UpstreamResponse(status=response.status_code, headers=headers, body=response.content)

    async def aclose(self) -> None:
        await self._client.aclose()
