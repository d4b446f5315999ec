"""The gate: routes a request, runs the pipeline, answers, settles and audits.

This is the whole request lifecycle on either runtime; runtimes only translate their native
request into a `GateRequest` and the `GateResponse` back.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from typing import Any

from gpushield_wire.errors import Problem, ProblemError

from .admin import api as admin_api
from .backends.base import BackendResult
from .context import RequestContext, Services
from .http import GateRequest, GateResponse
from .keyguard import SettleRequest, StoredResponse
from .openapi import openapi_document
from .pipeline import run_pipeline
from .ports import AuditEvent
from .tokens import endpoint as token_endpoint

logger = logging.getLogger("gpushield.gate")

MODELS_PREFIX = "/v1/models/"
JWKS_PATH = "/.well-known/jwks.json"
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
        if path == admin_api.PREFIX or path.startswith(admin_api.PREFIX + "/"):
            if self.services.admin is None:
                raise ProblemError("admin_disabled")
            return await admin_api.handle(ctx, self.services, self.services.admin)
        if path == token_endpoint.PATH:
            return await token_endpoint.handle(ctx, self.services)
        if path == JWKS_PATH:
            return await self._jwks(ctx)
        cached = self._static.get(path)
        if cached is not None:
            if request.method != "GET":
                raise ProblemError("method_not_allowed")
            return GateResponse(cached.status, cached.body, list(cached.headers))
        if path == "/healthz":
            return GateResponse.json(200, {"status": "ok"})
        raise ProblemError("not_found")

    async def _jwks(self, ctx: RequestContext) -> GateResponse:
        """RFC 7517 key set of the gate's token-signing keys, overlap included; cacheable
        for a few minutes (a new key is published before it signs, see tokens/issuer.py)."""
        if ctx.request.method != "GET":
            raise ProblemError("method_not_allowed")
        tokens = self.services.tokens
        if tokens is None:
            raise ProblemError("not_found")
        return GateResponse(200, json.dumps(await tokens.issuer.jwks(ctx.now)).encode(), [
            ("content-type", "application/jwk-set+json"), ("cache-control", "max-age=300")])

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
            ctx.settlement = await self.services.guard.settle(SettleRequest(
                str(ctx.key_id), admission.lease_id, ctx.idempotency_key, stored,
                self.services.clock.now(), ran=ctx.dispatched, used_ms=_used_ms(ctx.result),
                policy=self.services.config.costs.settle_policy,
            ))
        except Exception:
            # The lease expires by itself and its reservation stays charged at the worst
            # case (budget.py); the request's answer is unaffected.
            logger.warning("lease %s not released (request %s)", admission.lease_id,
                           ctx.request_id)
            return
        if ctx.settlement.alerts and self.services.alerts is not None:
            self.services.alerts.defer(ctx.settlement.alerts)

    @staticmethod
    def _audit_extra(ctx: RequestContext, replayed: bool) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if ctx.request.client_country:
            extra["country"] = ctx.request.client_country
        if replayed:
            extra["idempotent_replay"] = True
        if ctx.waf is not None:
            extra["waf"] = ctx.waf
        if ctx.admin_action is not None:
            extra["admin_action"] = ctx.admin_action
            extra["admin_target"] = ctx.admin_target
        settlement = ctx.settlement
        if settlement is not None and settlement.applied:
            extra["charged_gpu_ms"] = settlement.charged_gpu_ms
            extra["charged_micros"] = settlement.charged_micros
            if settlement.quarantined is not None:
                extra["quarantined"] = settlement.quarantined
        return extra

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
            extra=self._audit_extra(ctx, replayed),
        )
        # Sinks are fast by contract (a buffered line locally); a sink that does network I/O
        # defers it through the Background port itself (ctx.waitUntil at the edge).
        await self.services.audit.write(event)



def _used_ms(result: BackendResult | None) -> int | None:
    """GPU time to settle: the platform's reported execution time; else, for a job that
    finished, the gate's own measured wall time (an upper bound: it includes queueing); None
    (charge the reserved worst case) when the job may still have run to its cap."""
    if result is None or result.status == "TIMED_OUT":
        return None
    if result.execution_ms is not None:
        return result.execution_ms
    return int(result.measured_ms + 0.999)
