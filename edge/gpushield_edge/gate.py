"""The gate: routes a request, runs the pipeline, answers, settles and audits.

This is the whole request lifecycle on either runtime; runtimes only translate their native
request into a `GateRequest` and the `GateResponse` back.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from typing import Any

from gpushield_wire.errors import Problem, ProblemError

from .context import RequestContext, Services
from .http import GateRequest, GateResponse
from .keyguard import StoredResponse
from .openapi import openapi_document
from .pipeline import run_pipeline
from .ports import AuditEvent

logger = logging.getLogger("gpushield.gate")

MODELS_PREFIX = "/v1/models/"
INFER_SUFFIX = "/infer"


class Gate:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._static = {
            "/v1/models": GateResponse.json(200, self._describe_models()),
            "/openapi.json": GateResponse.json(200, openapi_document(services.config)),
        }

    def _describe_models(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": model.name,
                    "backend": "runpod",
                    "policy": model.policy.to_dict(),
                    "policy_hash": model.policy.policy_hash(),
                }
                for model in self.services.config.models.values()
            ]
        }

    async def handle(self, request: GateRequest) -> GateResponse:
        clock = self.services.clock
        ctx = RequestContext(
            request=request,
            request_id=secrets.token_hex(8),
            started=clock.monotonic(),
            now=clock.now(),
        )
        try:
            response = await self._route(ctx)
        except ProblemError as error:
            ctx.code = error.code
            response = GateResponse.problem(
                Problem(error.code, error.problem.detail, error.problem.extra,
                        instance=f"urn:gpushield:request:{ctx.request_id}")
            )
        except Exception as error:
            # A bug, not bad input. The frames are logged without the exception's message,
            # which could hold request data (a prompt, a header).
            ctx.code = "internal_error"
            logger.error(
                "gate error %s in stage %s (request %s)\n%s", type(error).__name__, ctx.stage,
                ctx.request_id, "".join(traceback.format_tb(error.__traceback__)),
            )
            response = GateResponse.problem(
                Problem("internal_error", instance=f"urn:gpushield:request:{ctx.request_id}")
            )
        await self._finish(ctx, response)
        response.headers.extend(ctx.response_headers)
        response.headers.append(("x-request-id", ctx.request_id))
        await self._audit(ctx, response)
        return response

    async def _route(self, ctx: RequestContext) -> GateResponse:
        request = ctx.request
        path = request.path
        if path.startswith(MODELS_PREFIX) and path.endswith(INFER_SUFFIX):
            name = path[len(MODELS_PREFIX):-len(INFER_SUFFIX)]
            if request.method != "POST":
                raise ProblemError("method_not_allowed")
            model = self.services.config.models.get(name)
            if model is None:
                raise ProblemError("model_unknown")
            ctx.model = model
            await run_pipeline(ctx, self.services)
            assert ctx.response is not None
            return ctx.response
        cached = self._static.get(path)
        if cached is not None:
            if request.method != "GET":
                raise ProblemError("method_not_allowed")
            return GateResponse(cached.status, cached.body, list(cached.headers))
        if path == "/healthz":
            return GateResponse.json(200, {"status": "ok"})
        raise ProblemError("not_found")

    async def _finish(self, ctx: RequestContext, response: GateResponse) -> None:
        """Ends the lease. Any answer given after a job may have started — success, worker
        failure or timeout — is kept for idempotent replays, so a retry never runs the GPU
        twice; a call that provably never reached the backend leaves no record, so it can."""
        admission = ctx.admission
        if admission is None or admission.outcome != "admitted" or admission.lease_id is None:
            return
        stored: StoredResponse | None = None
        if ctx.dispatched:
            stored = StoredResponse(response.status, tuple(response.headers), response.body)
        try:
            await self.services.guard.complete(
                str(ctx.key_id), admission.lease_id, ctx.idempotency_key, stored,
                self.services.clock.now(),
            )
        except Exception:
            # The lease expires by itself; the request's answer is unaffected.
            logger.warning("lease %s not released (request %s)", admission.lease_id,
                           ctx.request_id)

    async def _audit(self, ctx: RequestContext, response: GateResponse) -> None:
        result = ctx.result
        replayed = ctx.admission is not None and ctx.admission.outcome == "replay"
        event = AuditEvent(
            ts=ctx.now,
            request_id=ctx.request_id,
            route=ctx.request.path if ctx.model is None else f"infer:{ctx.model.name}",
            decision="allow" if response.status < 400 else (
                "error" if response.status >= 500 else "deny"),
            stage=ctx.stage,
            status=response.status,
            code=ctx.code,
            latency_ms=round((self.services.clock.monotonic() - ctx.started) * 1000, 3),
            key_id=ctx.key_id,
            model=ctx.model.name if ctx.model else None,
            backend_job_id=result.job_id if result else None,
            backend_ran=ctx.dispatched,
            execution_ms=result.execution_ms if result else None,
            client_ip=ctx.request.client_ip,
            extra={
                **({"idempotent_replay": True} if replayed else {}),
                **({"waf": ctx.waf} if ctx.waf is not None else {}),
            },
        )
        # Sinks are fast by contract (a buffered line locally); a sink that does network I/O
        # defers it through the Background port itself (ctx.waitUntil at the edge).
        await self.services.audit.write(event)

