"""Everything `Client` and `AsyncClient` share: building requests, reading answers, caching.

The two clients differ only in how they wait (blocking vs `await`), so they only drive I/O:
they ask this module for a `Call` (a request recipe plus the function that turns its response
into a result or an exception) and run it under the retry policy. Configuration from the
environment, the `/v1/models` cache, local validation and serialisation, the Idempotency-Key
and the mapping of problem+json onto exceptions live here, once.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from gpushield_wire.errors import Problem, parse_problem
from gpushield_wire.policy import ModelPolicy
from gpushield_wire.structured_fields import SerializeError, serialize_bare_item

from ._auth import SignatureAuth
from ._models import InputValidator, compile_policy, encode_body
from ._retry import RetryPolicy
from .errors import APIError, GpushieldError, ModelNotFound, TransportError, api_error

__all__ = ["InferenceResult", "ModelInfo", "Usage"]

T = TypeVar("T")

ENV_URL = "GPUSHIELD_URL"
ENV_KEY_ID = "GPUSHIELD_KEY_ID"
ENV_SECRET = "GPUSHIELD_SECRET"  # noqa: S105 - the variable's name, not a secret
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_MODELS_TTL = 300.0
_USER_AGENT = "gpushield-python"
_JSON = "application/json"
_ACCEPT = "application/json, application/problem+json"
# Codes that mean "your input broke the policy": if local validation passed, the policy we
# hold is probably stale.
_POLICY_CODES = frozenset(
    {
        "body_too_large",
        "json_too_deep",
        "json_too_large",
        "input_invalid",
        "input_too_long",
        "parameter_not_allowed",
        "parameter_missing",
        "parameter_type",
        "parameter_out_of_range",
    }
)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model the gate serves, with the input policy it enforces."""

    name: str
    backend: str
    policy: ModelPolicy
    policy_hash: str
    _validator: InputValidator = field(repr=False, compare=False)

    @property
    def input_model(self) -> type[BaseModel]:
        """The pydantic model of `input` for this policy (e.g. for `model_json_schema()`)."""
        return self._validator.model


@dataclass(frozen=True, slots=True)
class Usage:
    """What the backend reported: GPU execution time and queueing delay, in milliseconds."""

    execution_ms: int | None = None
    delay_ms: int | None = None


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """A completed inference. `replayed` is True when the gate answered from its idempotency
    cache (a retry of a call that had already run): the GPU did not run a second time."""

    id: str
    model: str
    status: str
    output: Any
    usage: Usage
    request_id: str | None
    replayed: bool


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One logical call: how to build each attempt's request, and how to read its answer.

    `auth` signs each attempt afresh (None: sent unsigned). `body` is serialised once, so
    every attempt sends the same bytes under the same Idempotency-Key.
    """

    method: str
    path: str
    handle: Callable[[httpx.Response], T]
    auth: httpx.Auth | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: httpx.Timeout | float | None = None

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request(
            self.method,
            self.path,
            content=self.body,
            headers=self.headers,
            timeout=httpx.USE_CLIENT_DEFAULT if self.timeout is None else self.timeout,
        )


def transport_error(error: httpx.TransportError) -> TransportError:
    """A connect failure never reached the gate, so it may be retried; anything later may have
    and is not (the message is httpx's class name only: its text can carry the URL)."""
    retryable = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
    return TransportError(f"could not reach the gate: {type(error).__name__}", retryable=retryable)


def _request_id(response: httpx.Response) -> str | None:
    request_id: str | None = response.headers.get("x-request-id")
    return request_id


def error_from_response(response: httpx.Response) -> APIError:
    """problem+json → typed exception; anything else → the class of its status."""
    problem: Problem | None = None
    try:
        problem = parse_problem(response.json())
    except ValueError:
        problem = None
    return api_error(
        response.status_code, problem, request_id=_request_id(response), headers=response.headers
    )


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise APIError(
            response.status_code, None, request_id=_request_id(response), retryable=False
        )
    return document


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_models(response: httpx.Response) -> list[ModelInfo]:
    if response.status_code != 200:
        raise error_from_response(response)
    models = []
    for entry in json_object(response).get("models", []):
        policy = ModelPolicy.from_dict(entry["policy"])
        policy_hash = str(entry.get("policy_hash") or policy.policy_hash())
        models.append(
            ModelInfo(
                name=str(entry["name"]),
                backend=str(entry.get("backend", "")),
                policy=policy,
                policy_hash=policy_hash,
                _validator=compile_policy(policy, policy_hash),
            )
        )
    return models


def parse_inference(response: httpx.Response) -> InferenceResult:
    if response.status_code != 200:
        raise error_from_response(response)
    document = json_object(response)
    usage = document.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    replayed = response.headers.get("idempotency-replayed", "").strip().lower()
    return InferenceResult(
        id=str(document.get("id", "")),
        model=str(document.get("model", "")),
        status=str(document.get("status", "")),
        output=document.get("output"),
        usage=Usage(_optional_int(usage.get("execution_ms")), _optional_int(usage.get("delay_ms"))),
        request_id=_request_id(response),
        replayed=replayed in ("true", "?1"),
    )


def idempotency_header(key: str | None) -> str:
    """The header value: an RFC 8941 sf-string (IETF Idempotency-Key draft), at most 255
    characters as the gate requires. One key per logical call, reused by every attempt."""
    if key is None:
        return f'"{uuid.uuid4().hex}"'  # hex needs no escaping: skip the serialiser
    if not 1 <= len(key) <= 255:
        raise ValueError("idempotency_key must be 1 to 255 characters")
    try:
        return serialize_bare_item(key)
    except SerializeError:
        raise ValueError("idempotency_key must be printable ASCII") from None


class ModelCache:
    """`/v1/models`, kept for `ttl` seconds and dropped as soon as the gate hints that a
    policy changed (it refused input that the cached policy accepted)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._models: dict[str, ModelInfo] | None = None
        self._fetched_at = 0.0

    def _fresh(self) -> dict[str, ModelInfo] | None:
        if self._models is None or self._clock() - self._fetched_at > self.ttl:
            return None
        return self._models

    def current(self) -> list[ModelInfo] | None:
        models = self._fresh()
        return None if models is None else list(models.values())

    def get(self, name: str) -> ModelInfo | None:
        models = self._fresh()
        return None if models is None else models.get(name)

    def store(self, models: list[ModelInfo]) -> list[ModelInfo]:
        self._models = {info.name: info for info in models}
        self._fetched_at = self._clock()
        return models

    def invalidate(self) -> None:
        self._models = None


class ClientCore:
    """The I/O-free half of a client: configuration, cache and call recipes."""

    def __init__(
        self,
        base_url: str | None,
        key_id: str | None,
        secret: str | bytes | None,
        *,
        max_retries: int,
        deadline: float | None,
        models_ttl: float,
        auth: httpx.Auth | None,
    ) -> None:
        base_url = base_url or os.environ.get(ENV_URL)
        if not base_url:
            raise GpushieldError(f"no gate URL: pass base_url or set {ENV_URL}")
        self.base_url = base_url
        if auth is None:
            key_id = key_id or os.environ.get(ENV_KEY_ID)
            secret = secret or os.environ.get(ENV_SECRET)
            if key_id and secret:
                auth = SignatureAuth(key_id, secret)
            elif key_id or secret:
                raise GpushieldError(
                    f"need both a key id and a secret ({ENV_KEY_ID}, {ENV_SECRET})"
                )
        self.auth = auth
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.retry = RetryPolicy(max_attempts=max_retries + 1, deadline=deadline)
        self.cache = ModelCache(models_ttl)

    def models_call(self) -> Call[list[ModelInfo]]:
        """GET /v1/models: public, unsigned (it only publishes policies)."""
        return Call(
            "GET",
            "/v1/models",
            lambda response: self.cache.store(parse_models(response)),
        )

    def model_unknown(self, name: str) -> ModelNotFound:
        error = api_error(404, Problem(code="model_unknown",
                                       detail=f"the gate serves no model {name!r}"))
        assert isinstance(error, ModelNotFound)
        return error

    def infer_call(
        self,
        info: ModelInfo,
        input: Mapping[str, Any],
        *,
        idempotency_key: str | None,
        timeout: httpx.Timeout | float | None,
    ) -> Call[InferenceResult]:
        """Validates and serialises once; every attempt then sends the same bytes and key."""
        if self.auth is None:
            raise GpushieldError(f"no credentials: pass key_id and secret or set {ENV_KEY_ID}")
        body = encode_body(info._validator, input)
        headers = {"content-type": _JSON, "idempotency-key": idempotency_header(idempotency_key)}
        return Call(
            "POST",
            f"/v1/models/{quote(info.name, safe='')}/infer",
            self._inference_handler(info),
            auth=self.auth,
            body=body,
            headers=headers,
            timeout=timeout,
        )

    def _inference_handler(self, info: ModelInfo) -> Callable[[httpx.Response], InferenceResult]:
        def handle(response: httpx.Response) -> InferenceResult:
            try:
                return parse_inference(response)
            except APIError as error:
                if error.code in _POLICY_CODES:
                    # We validated against `info.policy` and the gate still said no.
                    self.cache.invalidate()
                raise

        return handle


def http_options(
    core: ClientCore,
    *,
    timeout: httpx.Timeout | float | None,
    http2: bool,
) -> dict[str, Any]:
    """Keyword arguments for the `httpx.Client` / `httpx.AsyncClient` a client owns."""
    return {
        "base_url": core.base_url,
        "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
        "headers": {
            "user-agent": _USER_AGENT,
            "accept": _ACCEPT,
        },
        "http2": http2,
        "follow_redirects": False,  # a redirect would move a signed request elsewhere
    }
