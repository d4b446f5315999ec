"""RunPod Serverless adapter: one admitted call → one RunPod job, run to a terminal state.

Two flavors speak the two RunPod servers a deployment meets:

- ``serverless`` is RunPod's cloud (``https://api.runpod.ai``): ``POST /v2/{endpoint}/runsync``
  with ``?wait=`` and a Bearer key; a job that outlasts the wait comes back IN_QUEUE/IN_PROGRESS
  and is polled with ``GET /v2/{endpoint}/status/{job}``; past the caller's deadline it is
  cancelled with ``POST /v2/{endpoint}/cancel/{job}`` so the GPU stops billing.
- ``local`` is the ``runpod`` package's development server (``handler.py --rp_serve_api``): no
  ``/v2/{endpoint}`` prefix, status is a POST, there is no cancel and no timing fields. It is a
  real RunPod worker, which is why tests and ``gpushield dev`` use it.

The GPU time a key may spend on one call goes to RunPod as ``policy.executionTimeout`` so the
platform itself stops the job there; the reported ``executionTime`` is what settlement charges.

Past the deadline the adapter returns status ``TIMED_OUT`` (not ``CANCELLED``): from the caller's
side the call timed out, and the gate maps TIMED_OUT to backend_timeout; the cancel is our
clean-up, so ``error`` says whether RunPod confirmed it. ``dispatched`` stays True because the GPU
may have run until the cancel landed.

Standard library only, and all I/O goes through the Upstream and Clock ports, so the same code
runs under CPython and in Pyodide on Workers. The platform key appears only in the authorization
header of outgoing requests: never in a repr, an exception or a result.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from ..ports import Clock, Upstream, UpstreamError, UpstreamRequest, UpstreamResponse
from .base import BackendCall, BackendRejected, BackendResult, JobStatus

# RunPod's documented range for runsync's `wait` query parameter.
MIN_WAIT_MS = 1_000
MAX_WAIT_MS = 300_000
# RunPod refuses runsync bodies above 20 MB; refusing here saves a pointless upload.
MAX_BODY_BYTES = 20 * 1024 * 1024
# Time given to runsync's HTTP exchange beyond the wait it asked the platform to hold it.
SUBMIT_GRACE_S = 5.0
# How much of the remaining deadline runsync leaves unused so that, if the job is still running,
# the answer (with the job id) arrives before the deadline and the job can still be cancelled.
SUBMIT_MARGIN_S = 1.0
# The deadline has already passed when cancel is sent; it still deserves a bounded chance, since
# an uncancelled job keeps burning GPU time until its executionTimeout.
CANCEL_TIMEOUT_S = 5.0
# A single status poll never waits longer than this, even with a distant deadline.
POLL_REQUEST_TIMEOUT_S = 10.0

_TERMINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"})
_PENDING: frozenset[str] = frozenset({"IN_QUEUE", "IN_PROGRESS", "RUNNING"})
# Endpoint ids are RunPod-issued slugs; anything else would let config reshape the URL.
_ENDPOINT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# `error_type` as the runpod SDK writes it: str(type(err)), e.g. "<class 'RuntimeError'>".
_CLASS_REPR_RE = re.compile(r"<class '([A-Za-z0-9_.]+)'>")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

_DEADLINE_CANCELLED = "deadline_exceeded"
_DEADLINE_UNCONFIRMED = "deadline_exceeded_cancel_unconfirmed"

_HTTP_REASONS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
}


@dataclass(frozen=True, slots=True)
class RunPodConfig:
    """Where and how to reach one RunPod endpoint.

    `sync_wait_ms` is how long runsync asks RunPod to hold the connection before answering
    IN_QUEUE/IN_PROGRESS (RunPod's default is 90 s); each request also caps it at the call's
    remaining deadline. `api_key` is excluded from repr so a logged config never shows it.
    """

    base_url: str
    endpoint_id: str | None
    api_key: str | None = field(repr=False)
    flavor: Literal["serverless", "local"] = "serverless"
    sync_wait_ms: int = 90_000
    poll_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        if self.flavor not in ("serverless", "local"):
            raise ValueError("flavor must be 'serverless' or 'local'")
        if self.flavor == "serverless":
            if self.endpoint_id is None or not _ENDPOINT_ID_RE.fullmatch(self.endpoint_id):
                raise ValueError("serverless flavor needs a valid endpoint_id")
            if not self.api_key:
                raise ValueError("serverless flavor needs an api_key")
        if not MIN_WAIT_MS <= self.sync_wait_ms <= MAX_WAIT_MS:
            raise ValueError(f"sync_wait_ms must be within {MIN_WAIT_MS}..{MAX_WAIT_MS}")
        if not (math.isfinite(self.poll_interval_s) and self.poll_interval_s > 0):
            raise ValueError("poll_interval_s must be a positive number")


class RunPodBackend:
    """Implements the Backend protocol for RunPod Serverless (both flavors).

    Failure reporting, in order of how far the call got:
    - before a job id is known, transport faults raise UpstreamError (connect: nothing was
      sent; timeout/protocol on runsync: the job may have been queued, but without its id it
      cannot be cancelled), and HTTP errors raise BackendRejected;
    - once a job id is known, connect/timeout faults and 429/5xx on status polls are retried
      until the deadline; an unreadable status or a 4xx ends the call after a best-effort cancel,
      raising UpstreamError("protocol") or BackendRejected;
    - terminal jobs come back as a BackendResult, FAILED ones with only the error's type name.
    """

    def __init__(self, config: RunPodConfig) -> None:
        self._config = config
        base = config.base_url.rstrip("/")
        if config.flavor == "serverless":
            assert config.endpoint_id is not None  # checked in RunPodConfig.__post_init__
            self._prefix = f"{base}/v2/{config.endpoint_id}"
        else:
            self._prefix = base
        headers = {"content-type": "application/json", "accept": "application/json"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._headers: dict[str, str] = headers

    def __repr__(self) -> str:
        return f"RunPodBackend({self._config!r})"

    async def invoke(self, call: BackendCall, upstream: Upstream, clock: Clock) -> BackendResult:
        started = clock.monotonic()
        deadline = started + call.deadline_s

        def measured() -> float:
            return (clock.monotonic() - started) * 1000.0

        remaining = deadline - started
        if remaining <= 0:
            return BackendResult(
                job_id=None,
                status="TIMED_OUT",
                error="deadline_exceeded",
                measured_ms=measured(),
                dispatched=False,
            )

        body = json.dumps(
            {"input": call.input, "policy": {"executionTimeout": call.execution_timeout_ms}},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        if len(body) > MAX_BODY_BYTES:
            raise BackendRejected(413, "payload_too_large")

        if self._config.flavor == "serverless":
            wait_ms = _clamp_wait(
                min(self._config.sync_wait_ms, (remaining - SUBMIT_MARGIN_S) * 1000.0)
            )
            url = f"{self._prefix}/runsync?wait={wait_ms}"
            timeout = min(remaining, wait_ms / 1000.0 + SUBMIT_GRACE_S)
        else:
            # The local server answers runsync only when the handler returns; no wait applies.
            url = f"{self._prefix}/runsync"
            timeout = remaining
        response = await upstream.send(
            UpstreamRequest("POST", url, self._headers, body, timeout_s=timeout)
        )
        _raise_for_status(response)
        answer = _parse_job(response.body)
        job_id = answer.job_id
        last = answer

        while last.status in _PENDING:
            if job_id is None:
                raise UpstreamError("protocol", "pending job without an id")
            now = clock.monotonic()
            if now >= deadline:
                confirmed = await self._cancel(job_id, upstream)
                return BackendResult(
                    job_id=job_id,
                    status="TIMED_OUT",
                    error=_DEADLINE_CANCELLED if confirmed else _DEADLINE_UNCONFIRMED,
                    execution_ms=last.execution_ms,
                    delay_ms=last.delay_ms,
                    measured_ms=measured(),
                    dispatched=True,
                )
            await clock.sleep(min(self._config.poll_interval_s, deadline - now))
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                continue  # the top of the loop cancels
            polled = await self._poll(job_id, upstream, min(remaining, POLL_REQUEST_TIMEOUT_S))
            if polled is not None:
                last = polled

        return BackendResult(
            job_id=job_id if job_id is not None else last.job_id,
            status=_terminal(last.status),
            output=last.output if last.status == "COMPLETED" else None,
            error=_scrub_error(last.status, last.error),
            execution_ms=last.execution_ms,
            delay_ms=last.delay_ms,
            measured_ms=measured(),
            dispatched=True,
        )

    async def _poll(self, job_id: str, upstream: Upstream, limit_s: float) -> _JobAnswer | None:
        """One status request; None means "no news, keep polling" (a transient fault)."""
        method = "GET" if self._config.flavor == "serverless" else "POST"
        request = UpstreamRequest(
            method, f"{self._prefix}/status/{quote(job_id, safe='')}", self._headers, None, limit_s
        )
        try:
            response = await upstream.send(request)
        except UpstreamError as exc:
            if exc.kind in ("connect", "timeout"):
                return None
            await self._cancel(job_id, upstream)
            raise
        if response.status == 429 or response.status >= 500:
            return None
        try:
            _raise_for_status(response)
            return _parse_job(response.body)
        except (BackendRejected, UpstreamError):
            await self._cancel(job_id, upstream)
            raise

    async def _cancel(self, job_id: str, upstream: Upstream) -> bool:
        """Best-effort cancel; True only if RunPod answered 2xx. The local server has none."""
        if self._config.flavor != "serverless":
            return False
        request = UpstreamRequest(
            "POST",
            f"{self._prefix}/cancel/{quote(job_id, safe='')}",
            self._headers,
            None,
            CANCEL_TIMEOUT_S,
        )
        try:
            response = await upstream.send(request)
        except UpstreamError:
            return False
        return 200 <= response.status < 300


@dataclass(frozen=True, slots=True)
class _JobAnswer:
    job_id: str | None
    status: str
    output: Any
    error: Any
    execution_ms: int | None
    delay_ms: int | None


def _clamp_wait(wait_ms: float) -> int:
    return int(max(MIN_WAIT_MS, min(MAX_WAIT_MS, wait_ms)))


def _raise_for_status(response: UpstreamResponse) -> None:
    if 200 <= response.status < 300:
        return
    status = response.status
    reason = _HTTP_REASONS.get(status, "platform_error" if status >= 500 else f"http_{status}")
    raise BackendRejected(status, reason, _retry_after(response.headers.get("retry-after")))


def _retry_after(value: str | None) -> float | None:
    """Delta-seconds form only; an HTTP-date Retry-After is rare from RunPod and ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _parse_job(body: bytes) -> _JobAnswer:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise UpstreamError("protocol", "RunPod answer is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamError("protocol", "RunPod answer is not a JSON object")
    status = data.get("status")
    if not isinstance(status, str) or status not in _TERMINAL | _PENDING:
        raise UpstreamError("protocol", "RunPod answer has no known job status")
    job_id = data.get("id")
    return _JobAnswer(
        job_id=job_id if isinstance(job_id, str) and job_id else None,
        status=status,
        output=data.get("output"),
        error=data.get("error"),
        execution_ms=_millis(data.get("executionTime")),
        delay_ms=_millis(data.get("delayTime")),
    )


def _millis(value: Any) -> int | None:
    """RunPod's timing fields are integer ms; the local server omits them (then None)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return round(value)


def _terminal(status: str) -> JobStatus:
    if status == "COMPLETED":
        return "COMPLETED"
    if status == "FAILED":
        return "FAILED"
    if status == "CANCELLED":
        return "CANCELLED"
    return "TIMED_OUT"


def _scrub_error(status: str, error: Any) -> str | None:
    """Reduces a job's error to a short token that is safe to return and log.

    The runpod SDK sends a handler exception as a JSON string with error_type, error_message and
    error_traceback (file paths, code lines, maybe input data). Only the exception's class name
    survives; a handler's own `{"error": "..."}` text becomes "handler_error".
    """
    if status == "COMPLETED":
        return None
    if status == "TIMED_OUT":
        return "execution_timeout"
    if status == "CANCELLED":
        return "cancelled"
    info: Any = error
    if isinstance(error, str):
        try:
            info = json.loads(error)
        except ValueError:
            info = None
    if isinstance(info, dict):
        error_type = info.get("error_type")
        if isinstance(error_type, str):
            match = _CLASS_REPR_RE.fullmatch(error_type.strip())
            name = (match.group(1) if match else error_type.strip()).rsplit(".", 1)[-1]
            if _IDENTIFIER_RE.fullmatch(name):
                return name
    return "handler_error"
