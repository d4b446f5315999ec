"""Typed exceptions: one class per way the gate (or the SDK itself) can refuse a call.

The gate answers every refusal with RFC 9457 problem+json carrying a stable `code` from the
contract's catalog (`gpushield_wire.errors.CATALOG`). The SDK turns that code into a class so
callers can catch at the level they care about: `APIError` for "the gate said no",
`InputRejected` for "fix your input", `RateLimited` for "slow down", `GpushieldError` for
everything. A code this SDK version does not know falls back to the class of its HTTP status,
so a newer gate never breaks an older client.

Messages carry the status, the code, the catalog title and the gate's `detail` — the contract
promises those never echo request content — and never a header, a signature or a secret.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

from gpushield_wire.errors import CATALOG, Problem

__all__ = [
    "APIError",
    "AuthenticationError",
    "BackendError",
    "BudgetExceeded",
    "Conflict",
    "GateUnavailable",
    "GpushieldError",
    "IdempotencyInProgress",
    "InputRejected",
    "ModelNotFound",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "TransportError",
]


class GpushieldError(Exception):
    """Base of everything this SDK raises on purpose."""


class TransportError(GpushieldError):
    """The gate could not be reached (after retries, when the failure was retryable).

    `retryable` says whether the retry policy may try again: a failed connect never reached
    the gate, so trying again cannot run anything twice; a read timeout might have.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class APIError(GpushieldError):
    """The gate answered with an error status.

    `code` is the catalog code (None when the answer was not one of our problem documents,
    e.g. a proxy's HTML 502); `problem` the parsed document; `request_id` the gate's
    `x-request-id`, which is what to quote in a support request.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        problem: Problem | None = None,
        request_id: str | None = None,
        *,
        retryable: bool | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.problem = problem
        self.request_id = request_id
        kind = CATALOG.get(code) if code is not None else None
        if retryable is None:
            retryable = kind.retryable if kind is not None else status in _RETRYABLE_STATUSES
        self.retryable = retryable
        title = kind.title if kind is not None else "HTTP error"
        message = f"{status} {code or 'error'}: {title}"
        if problem is not None and problem.detail:
            message += f" ({problem.detail})"
        if request_id:
            message += f" [request {request_id}]"
        super().__init__(message)


class AuthenticationError(APIError):
    """401: the signature, digest or key was refused. Retrying the same way will not help."""


class PermissionDenied(APIError):
    """403: the key is valid but not allowed to call this model."""


class NotFound(APIError):
    """404: no such route."""


class ModelNotFound(NotFound):
    """404 `model_unknown`: the gate serves no model by that name."""


class Conflict(APIError):
    """409 (and `idempotency_key_reused`): the Idempotency-Key clashes with another call."""


class IdempotencyInProgress(Conflict):
    """409: a call with the same Idempotency-Key is still running on the gate."""


class InputRejected(APIError):
    """The input breaks the model's policy (422), the body is too big (413) or not our JSON.

    Raised by the gate, and also locally before any network I/O with the code the gate
    would have used. `violations` lists `{"pointer", "code", ...limits}` entries.
    """

    @property
    def violations(self) -> list[dict[str, Any]]:
        if self.problem is None:
            return []
        found = self.problem.extra.get("violations")
        return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


class RateLimited(APIError):
    """429: rate or concurrency limit. `retry_after` is seconds to wait, when the gate said."""

    def __init__(
        self,
        status: int,
        code: str | None,
        problem: Problem | None = None,
        request_id: str | None = None,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, problem, request_id, retryable=retryable)
        self.retry_after = retry_after


class BudgetExceeded(APIError):
    """402: the key's GPU-second budget for this period is spent. Waiting a little won't help."""


class BackendError(APIError):
    """5xx: the model backend failed, timed out or is unavailable."""


class GateUnavailable(BackendError):
    """503 `guard_unavailable`: the gate cannot reach its per-key state and refuses safely."""


_RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

_BY_CODE: dict[str, type[APIError]] = {
    "model_unknown": ModelNotFound,
    "idempotency_in_progress": IdempotencyInProgress,
    # 422 on the wire, but the fix is a new key, not a new input.
    "idempotency_key_reused": Conflict,
    "idempotency_key_invalid": APIError,
    "guard_unavailable": GateUnavailable,
    "headers_too_large": APIError,
    "method_not_allowed": APIError,
    # Admin API answers: about a key-management request, not a model input.
    "admin_request_invalid": APIError,
    # Token endpoint answers: about the credentials or the token request, not a model input.
    "oauth_invalid_request": APIError,
    "oauth_invalid_grant": AuthenticationError,
    "oauth_invalid_scope": PermissionDenied,
    "oauth_unsupported_grant_type": APIError,
}

_BY_STATUS: dict[int, type[APIError]] = {
    400: InputRejected,
    401: AuthenticationError,
    402: BudgetExceeded,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: InputRejected,
    415: InputRejected,
    422: InputRejected,
    429: RateLimited,
}


def error_class(status: int, code: str | None) -> type[APIError]:
    """The class for a refusal: by catalog code when known, else by the response status."""
    if code is not None and code in CATALOG:
        special = _BY_CODE.get(code)
        if special is not None:
            return special
        status = CATALOG[code].status
    if status >= 500:
        return BackendError
    return _BY_STATUS.get(status, APIError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def api_error(
    status: int,
    problem: Problem | None,
    *,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> APIError:
    """Builds the exception for one error response (or for a local refusal: no headers)."""
    code = problem.code if problem is not None else None
    cls = error_class(status, code)
    if cls is RateLimited:
        retry_after = parse_retry_after(headers.get("retry-after")) if headers else None
        if retry_after is None and problem is not None:
            member = problem.extra.get("retry_after")
            if (
                isinstance(member, int | float)
                and not isinstance(member, bool)
                and math.isfinite(member)
                and member >= 0
            ):
                retry_after = float(member)
        return RateLimited(status, code, problem, request_id, retry_after=retry_after)
    return cls(status, code, problem, request_id)


def local_rejection(code: str, violations: list[dict[str, Any]]) -> InputRejected:
    """An InputRejected raised before sending, shaped exactly like the gate's answer."""
    problem = Problem(code=code, extra={"violations": violations})
    error = api_error(problem.status, problem)
    assert isinstance(error, InputRejected), code
    return error
