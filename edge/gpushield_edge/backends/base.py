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
