"""What every backend adapter takes and returns.

An adapter speaks one platform's protocol (RunPod Serverless, Lambda function URLs, generic
HTTPS) through the Upstream port, so it runs unchanged on both runtimes. It reports what the
platform says it used (`execution_ms`), which is what settlement charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..ports import Clock, Upstream

JobStatus = Literal["COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"]


@dataclass(frozen=True, slots=True)
class BackendCall:
    request_id: str
    model: str
    input: dict[str, Any]
    # GPU time this call may use (the key's per-call cap), handed to the platform so the GPU
    # itself stops there (RunPod `policy.executionTimeout`).
    execution_timeout_ms: int
    # Wall-clock seconds the caller will wait in total, queueing included.
    deadline_s: float


@dataclass(frozen=True, slots=True)
class BackendResult:
    job_id: str | None
    status: JobStatus
    output: Any = None
    # A short, scrubbed reason for FAILED/TIMED_OUT (never the worker's traceback).
    error: str | None = None
    execution_ms: int | None = None
    delay_ms: int | None = None
    # Wall-clock time the gate spent on the call, measured by the gate itself.
    measured_ms: float = 0.0
    # True when a job was submitted to the platform (the GPU may have run).
    dispatched: bool = True


class Backend(Protocol):
    async def invoke(self, call: BackendCall, upstream: Upstream, clock: Clock) -> BackendResult:
        """Runs the job to a terminal state or the deadline (then cancels it).

        Raises ports.UpstreamError for transport faults before anything was dispatched.
        """


class BackendRejected(Exception):
    """The platform answered the call with an HTTP error (bad platform key, throttled, down).

    Distinct from UpstreamError (nothing usable came back) because the gate maps it by status:
    401/403 mean the edge's own platform key is wrong (an operator problem, never the caller's),
    429 carries a Retry-After worth passing on, 5xx is the platform failing. `reason` is a short
    fixed token; the platform's body is never kept, so nothing it echoed can leak.
    """

    def __init__(self, status: int, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"backend rejected the call: HTTP {status} ({reason})")
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s
