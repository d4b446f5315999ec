"""`TokenAuth`: short-lived access tokens from the gate's /oauth/token, as an `httpx.Auth`.

    client = Client(url, auth=TokenAuth(key_id, secret))

The flow (sans-I/O, like `SignatureAuth`): use the cached token if it is not due for
refresh; otherwise yield an RFC 6749 §4.4 client-credentials request to `/oauth/token` on
the same gate — signed with the key (RFC 9421), so the secret never travels — read the
answer, cache it, then yield the original request with `Authorization: Bearer …`. If the gate
answers 401 with a code that means "this token is no longer good" (expired, revoked by a
rotation or restore, signed by a retired key), the flow forces one refresh and retries the
request once; the retry carries the same Idempotency-Key, and the refused attempt never
reached a GPU.

Refresh happens ahead of expiry — at a random point in the last 10–20 % of the token's life
(jitter, so a fleet of clients does not refresh in lockstep) — and is single-flight: one lock
per `TokenAuth` across threads, and one per event loop across asyncio tasks, so 50 callers
arriving together cause one token request. The schedule comes from `expires_in`; pyjwt reads
the token's `exp` (unverified) only as an upper bound on it. Nothing here trusts a claim for
security: the gate verifies every token on every request.

The token and the secret are never logged and never in a `repr`; a `TokenAuth` cannot be
pickled.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from gpushield_wire.errors import parse_problem

from ._auth import SignatureAuth
from ._protocol import error_from_response, json_object
from .errors import api_error

__all__ = ["TokenAuth"]

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a route, not a secret
# 401 codes after which a fresh token may succeed; any other refusal is final.
REFRESH_CODES = frozenset({"token_expired", "token_revoked", "token_kid_unknown",
                           "token_signature_invalid", "token_not_yet_valid"})


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float
    expires_at: float


class TokenAuth(httpx.Auth):
    """Bearer tokens for a gpushield key. `scope` (model names) narrows the token; `clock`
    is monotonic seconds for the refresh schedule and `wall_clock` epoch seconds for signing
    token requests (both injectable for tests); `rng` draws the refresh jitter."""

    requires_request_body = True
    requires_response_body = True

    def __init__(
        self,
        key_id: str,
        secret: str | bytes,
        *,
        scope: list[str] | None = None,
        token_path: str = TOKEN_PATH,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.key_id = key_id
        self._signer = SignatureAuth(key_id, secret, clock=wall_clock)
        self._scope = " ".join(scope) if scope else None
        self._token_path = token_path
        self._clock = clock
        self._rng = rng
        self._token: _Token | None = None
        self._thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())
        self.token_requests = 0  # how many token requests this instance has made

    def __repr__(self) -> str:
        return f"TokenAuth(key_id={self.key_id!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("TokenAuth holds a secret and tokens and cannot be pickled")

    # -- the cache -------------------------------------------------------------------------

    def _fresh(self) -> _Token | None:
        token = self._token
        if token is None or self._clock() >= token.refresh_at:
            return None
        return token

    def invalidate(self, value: str | None = None) -> None:
        """Drops the cached token (only if it is still `value`, when given)."""
        token = self._token
        if token is not None and (value is None or token.value == value):
            self._token = None

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        form = "grant_type=client_credentials"
        if self._scope:
            form += "&scope=" + self._scope.replace(" ", "%20")
        token_request = httpx.Request(
            "POST", request.url.copy_with(raw_path=self._token_path.encode(), query=None),
            content=form.encode(),
            headers={"content-type": "application/x-www-form-urlencoded",
                     "accept": "application/json"},
        )
        self._signer.sign(token_request)
        self.token_requests += 1
        return token_request

    def _store(self, response: httpx.Response, sent_at: float) -> _Token:
        if response.status_code != 200:
            raise error_from_response(response)
        document = json_object(response)
        value = document.get("access_token")
        expires_in = document.get("expires_in")
        if not isinstance(value, str) or not isinstance(expires_in, int | float):
            raise api_error(response.status_code, None)
        lifetime = float(expires_in)
        try:  # an upper bound only; the gate is the judge of validity
            claims = jwt.decode(value, options={"verify_signature": False})
            lifetime = min(lifetime, float(claims["exp"]) - float(claims["iat"]))
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            pass
        lifetime = max(lifetime, 1.0)
        early = lifetime * (0.1 + 0.1 * self._rng())
        token = _Token(value, sent_at + lifetime - early, sent_at + lifetime)
        self._token = token
        return token

    # -- sync and async flows ----------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request
                       ) -> Generator[httpx.Request, httpx.Response, None]:
        # Overriding httpx's driver means doing its reads: the body is re-sent on a retry,
        # and the token answer and a 401's code are read before the flow looks at them.
        request.read()
        token = self._fresh()
        if token is None:
            with self._thread_lock:
                token = self._fresh()
                if token is None:
                    sent_at = self._clock()
                    response = yield self._token_request(request)
                    response.read()
                    token = self._store(response, sent_at)
        response = yield self._with(request, token)
        response.read()
        if self._should_refresh(response):
            self.invalidate(token.value)
            with self._thread_lock:
                fresh = self._fresh()
                if fresh is None or fresh.value == token.value:
                    sent_at = self._clock()
                    answer = yield self._token_request(request)
                    answer.read()
                    fresh = self._store(answer, sent_at)
            yield self._with(request, fresh)

    async def async_auth_flow(self, request: httpx.Request
                              ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        lock = self._loop_lock()
        token = self._fresh()
        if token is None:
            async with lock:
                token = self._fresh()
                if token is None:
                    sent_at = self._clock()
                    response = yield self._token_request(request)
                    await response.aread()
                    token = self._store(response, sent_at)
        response = yield self._with(request, token)
        await response.aread()
        if self._should_refresh(response):
            self.invalidate(token.value)
            async with lock:
                fresh = self._fresh()
                if fresh is None or fresh.value == token.value:
                    sent_at = self._clock()
                    answer = yield self._token_request(request)
                    await answer.aread()
                    fresh = self._store(answer, sent_at)
            yield self._with(request, fresh)

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    @staticmethod
    def _with(request: httpx.Request, token: _Token) -> httpx.Request:
        request.headers["authorization"] = f"Bearer {token.value}"
        return request

    @staticmethod
    def _should_refresh(response: httpx.Response) -> bool:
        if response.status_code != 401:
            return False
        try:
            problem = parse_problem(json.loads(response.content))
        except ValueError:
            return False
        return problem is not None and problem.code in REFRESH_CODES

    # -- direct use ----------------------------------------------------------------------------

    def get_token(self, http: httpx.Client) -> str:
        """A current token (fetching one if needed) for use outside httpx (e.g. to hand to
        another component). Treat it as a secret."""
        probe = http.build_request("GET", "/")
        flow = self.sync_auth_flow(probe)
        request = next(flow)
        while request is not probe:
            request = flow.send(http.send(request, auth=None))
        flow.close()
        return probe.headers["authorization"][len("Bearer "):]

    async def aget_token(self, http: httpx.AsyncClient) -> str:
        probe = http.build_request("GET", "/")
        flow = self.async_auth_flow(probe)
        request = await flow.__anext__()
        while request is not probe:
            request = await flow.asend(await http.send(request, auth=None))
        await flow.aclose()
        return probe.headers["authorization"][len("Bearer "):]
