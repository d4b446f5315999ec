"""The Cloudflare Worker: the gate's HTTP entry point and its Durable Object classes.

wrangler uploads this file as the bundle's main module (see wrangler.toml and
scripts/build_worker.py). Nothing at the top level touches env, randomness or the network:
workerd runs it at deploy time to take a snapshot, and forbids all three there.
"""

from typing import Any

from workers import DurableObject, Response, WorkerEntrypoint

from gpushield_edge.runtime_workers.app import EdgeGate
from gpushield_edge.runtime_workers.objects import (
    DirectoryEndpoint,
    account_endpoint,
    guard_endpoint,
)

_EDGE = EdgeGate()


class Default(WorkerEntrypoint):
    """Every HTTP request: parse, authenticate, check, admit, forward — see pipeline.py."""

    async def fetch(self, request: Any) -> Response:
        return Response(await _EDGE.handle(self.env, request.js_object))


class KeyGuardObject(DurableObject):
    """One per API key (named by key id): its sealed secret, status, limits, nonces, leases
    and idempotency records. The gate asks it one question per request."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self._endpoint: Any = None

    async def call(self, method: str, payload: str) -> str:
        if self._endpoint is None:
            self._endpoint = guard_endpoint(self.ctx, self.env)
        return await self._endpoint.dispatch(str(method), str(payload))


class KeyDirectoryObject(DurableObject):
    """The list of keys (public records only) and the admin API's nonces."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self._endpoint = DirectoryEndpoint(self.ctx)

    async def call(self, method: str, payload: str) -> str:
        return await self._endpoint.dispatch(str(method), str(payload))


class AccountGuardObject(DurableObject):
    """One per account: how much of each account-wide budget the key guards have leased.
    Key guards ask it for chunks now and then, never on every request."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self._endpoint: Any = None

    async def call(self, method: str, payload: str) -> str:
        if self._endpoint is None:
            self._endpoint = account_endpoint(self.ctx, self.env)
        return str(await self._endpoint.dispatch(str(method), str(payload)))
