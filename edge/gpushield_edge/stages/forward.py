"""Stage 5 — forward: run the job on the model's backend and shape the answer.

The backend gets the key's per-call GPU-time cap (RunPod `policy.executionTimeout`) and the
model's deadline. Worker errors are reduced to a code: a worker's traceback or message never
reaches the caller.
"""

from __future__ import annotations

from gpushield_wire.errors import ProblemError

from ..backends.base import BackendCall, BackendRejected
from ..context import RequestContext, Services
from ..http import GateResponse
from ..ports import UpstreamError

_UPSTREAM_CODES = {
    "connect": "backend_unavailable",
    "timeout": "backend_timeout",
    "protocol": "backend_failed",
}


async def run(ctx: RequestContext, services: Services) -> None:
    model = ctx.model
    admission = ctx.admission
    assert model is not None and admission is not None and ctx.input is not None
    backend = services.backends[model.name]
    call = BackendCall(
        request_id=ctx.request_id,
        model=model.name,
        input=ctx.input,
        execution_timeout_ms=int(admission.max_call_gpu_ms or 60_000),
        deadline_s=model.deadline_s,
    )
    # From here on a job may exist even if no answer comes back (a read timeout after the
    # submit): only a refused connection proves that nothing ran.
    ctx.dispatched = True
    try:
        result = await backend.invoke(call, services.upstream, services.clock)
    except UpstreamError as error:
        ctx.dispatched = error.kind != "connect"
        raise ProblemError(_UPSTREAM_CODES[error.kind]) from None
    except BackendRejected as error:
        ctx.dispatched = False
        if error.status not in (429, 503):
            raise ProblemError("backend_failed") from None
        if error.retry_after_s is None:
            raise ProblemError("backend_unavailable") from None
        # The platform said when to come back: the caller gets the same advice.
        seconds = max(1, int(error.retry_after_s + 0.999))
        ctx.response_headers.append(("retry-after", str(seconds)))
        raise ProblemError("backend_unavailable", retry_after=seconds) from None
    ctx.result = result
    ctx.dispatched = result.dispatched
    if result.status == "FAILED":
        raise ProblemError("backend_failed", job_id=result.job_id, reason=result.error)
    if result.status != "COMPLETED":
        raise ProblemError("backend_timeout", job_id=result.job_id)
    ctx.response = GateResponse.json(
        200,
        {
            "id": result.job_id,
            "model": model.name,
            "status": result.status,
            "output": result.output,
            "usage": {"execution_ms": result.execution_ms, "delay_ms": result.delay_ms},
        },
    )
