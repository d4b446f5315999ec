"""`Client` and `AsyncClient`: the same API, blocking or awaitable.

Both only drive I/O. Everything else — configuration, the models cache, local validation,
serialisation, Idempotency-Key, response mapping — comes from `_protocol.ClientCore`, and the
signing from `SignatureAuth`, so the two cannot drift apart. Each instance owns one httpx
client, so sequential calls reuse one keep-alive connection: close it (or use `with`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._protocol import (
    DEFAULT_MODELS_TTL,
    Call,
    ClientCore,
    InferenceResult,
    ModelInfo,
    http_options,
    transport_error,
)

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")


class _Base:
    _core: ClientCore

    def __repr__(self) -> str:
        auth = self._core.auth
        key_id = getattr(auth, "key_id", None)
        return f"{type(self).__name__}(base_url={self._core.base_url!r}, key_id={key_id!r})"

    def _lookup(self, models: list[ModelInfo], name: str) -> ModelInfo:
        for info in models:
            if info.name == name:
                return info
        raise self._core.model_unknown(name)


class Client(_Base):
    """A blocking client for a gpushield gate.

    Arguments left out come from `GPUSHIELD_URL`, `GPUSHIELD_KEY_ID` and `GPUSHIELD_SECRET`.
    `max_retries` counts retries after the first attempt; `deadline` bounds one call with
    its retries and waits (seconds). `timeout` is httpx's (per attempt). `transport` and
    `http2` go to the underlying `httpx.Client`; `auth` replaces the default signer (e.g. a
    `SignatureAuth` with an Ed25519 key).
    """

    def __init__(
        self,
        base_url: str | None = None,
        key_id: str | None = None,
        secret: str | bytes | None = None,
        *,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = 3,
        deadline: float | None = 120.0,
        models_ttl: float = DEFAULT_MODELS_TTL,
        transport: httpx.BaseTransport | None = None,
        http2: bool = False,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._core = ClientCore(
            base_url,
            key_id,
            secret,
            max_retries=max_retries,
            deadline=deadline,
            models_ttl=models_ttl,
            auth=auth,
        )
        self._http = httpx.Client(
            transport=transport, **http_options(self._core, timeout=timeout, http2=http2)
        )

    def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The models the gate serves, with their input policies (cached; see `models_ttl`)."""
        cached = None if refresh else self._core.cache.current()
        return cached if cached is not None else self._run(self._core.models_call())

    def model(self, name: str) -> ModelInfo:
        """One model's info, from the cache when fresh; raises ModelNotFound locally."""
        info = self._core.cache.get(name)
        return info if info is not None else self._lookup(self.models(refresh=True), name)

    def infer(
        self,
        model: str,
        input: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> InferenceResult:
        """Runs `model` on `input` and waits for the result.

        The input is checked against the model's policy first: InputRejected is raised
        without any request. Retries reuse one Idempotency-Key (yours, or a fresh UUID), so
        the GPU runs at most once per call.
        """
        call = self._core.infer_call(
            self.model(model), input, idempotency_key=idempotency_key, timeout=timeout
        )
        return self._run(call)

    def _run(self, call: Call[T]) -> T:
        for attempt in self._core.retry.sync():
            with attempt:
                request = call.build(self._http)
                try:
                    response = self._http.send(request, auth=call.auth)
                except httpx.TransportError as error:
                    raise transport_error(error) from error
                return call.handle(response)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio twin of `Client`: same arguments, same methods, awaitable."""

    def __init__(
        self,
        base_url: str | None = None,
        key_id: str | None = None,
        secret: str | bytes | None = None,
        *,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = 3,
        deadline: float | None = 120.0,
        models_ttl: float = DEFAULT_MODELS_TTL,
        transport: httpx.AsyncBaseTransport | None = None,
        http2: bool = False,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._core = ClientCore(
            base_url,
            key_id,
            secret,
            max_retries=max_retries,
            deadline=deadline,
            models_ttl=models_ttl,
            auth=auth,
        )
        self._http = httpx.AsyncClient(
            transport=transport, **http_options(self._core, timeout=timeout, http2=http2)
        )

    async def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        cached = None if refresh else self._core.cache.current()
        return cached if cached is not None else await self._run(self._core.models_call())

    async def model(self, name: str) -> ModelInfo:
        info = self._core.cache.get(name)
        return info if info is not None else self._lookup(await self.models(refresh=True), name)

    async def infer(
        self,
        model: str,
        input: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        # httpx's per-attempt timeout, not a cancellation scope: wrap in asyncio.timeout for that.
        timeout: httpx.Timeout | float | None = None,  # noqa: ASYNC109
    ) -> InferenceResult:
        call = self._core.infer_call(
            await self.model(model), input, idempotency_key=idempotency_key, timeout=timeout
        )
        return await self._run(call)

    async def _run(self, call: Call[T]) -> T:
        async for attempt in self._core.retry.async_():
            with attempt:
                request = call.build(self._http)
                try:
                    response = await self._http.send(request, auth=call.auth)
                except httpx.TransportError as error:
                    raise transport_error(error) from error
                return call.handle(response)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
