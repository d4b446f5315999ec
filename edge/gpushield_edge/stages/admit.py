"""Stage 4 — admit: one call to the key's guard decides the rest.

The guard verifies the signature under the key's secret, then checks status, expiry, model
scope, nonce replay, idempotency, rate and concurrency in one transaction (see
`keyguard/guard.py`). A guard that cannot be reached fails closed.
"""

from __future__ import annotations

from typing import Any

from gpushield_wire.errors import ProblemError

from ..context import RequestContext, Services
from ..http import GateResponse
from ..keyguard import AdmitRequest
from .authenticate import nonce_expiry

# A lease outlives the caller's deadline by this much, then frees itself if we never return.
LEASE_MARGIN_S = 30.0


def rate_limit_headers(
    limits: dict[str, float], retry_after: float | None
) -> list[tuple[str, str]]:
    """IETF RateLimit / RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers)."""
    if not limits:
        return []
    burst = int(limits["burst"])
    window = round(burst * 60.0 / limits["rate_per_minute"]) if limits["rate_per_minute"] else 60
    headers = [
        ("ratelimit-policy", f'"key";q={burst};w={max(1, window)}'),
        ("ratelimit", f'"key";r={max(0, int(limits["remaining"]))}'
                      + (f";t={int(retry_after + 0.999)}" if retry_after else "")),
    ]
    return headers


def _costs(ctx: RequestContext, services: Services) -> dict[str, Any]:
    """What the guard needs to reserve this call's worst case — the same for signed and
    bearer requests, so no way of authenticating escapes the budgets."""
    assert ctx.model is not None
    costs = services.config.costs
    price = costs.price_for(ctx.model.name)
    country = ctx.request.client_country  # the platform's own answer (request.cf at the edge)
    header = costs.settle_policy.anomaly.country_header
    if country is None and header:
        country = ctx.request.headers.get(header, "")[:8].upper() or None
    return {
        "micros_per_gpu_s": price.micros_per_gpu_s,
        "min_micros": price.min_micros,
        "account_budgets": costs.account_budget_documents,
        "country": country,
    }


def _bearer_request(ctx: RequestContext, services: Services) -> AdmitRequest:
    """A bearer-only request: the token was verified by the gate; the guard checks its key's
    status and version, scope, rate, concurrency and budgets (no signature, no nonce)."""
    grant, model = ctx.bearer, ctx.model
    assert grant is not None and model is not None
    return AdmitRequest(
        key_id=grant.key_id, alg="", signature_base=b"", signature=b"", model=model.name,
        nonce="", nonce_expires_at=0.0, now=ctx.now,
        lease_ttl_s=model.deadline_s + LEASE_MARGIN_S, idempotency_key=ctx.idempotency_key,
        fingerprint=ctx.fingerprint, auth="bearer", token_version=grant.key_version,
        **_costs(ctx, services),
    )


async def run(ctx: RequestContext, services: Services) -> None:
    signature = ctx.signature
    model = ctx.model
    if signature is None and ctx.bearer is not None:
        await _decide(ctx, services, _bearer_request(ctx, services))
        return
    assert signature is not None and model is not None
    request = AdmitRequest(
        key_id=str(signature.keyid),
        alg=str(signature.alg),
        signature_base=ctx.signature_base,
        signature=signature.signature,
        model=model.name,
        nonce=str(signature.nonce),
        nonce_expires_at=nonce_expiry(signature, services.config),
        now=ctx.now,
        lease_ttl_s=model.deadline_s + LEASE_MARGIN_S,
        idempotency_key=ctx.idempotency_key,
        fingerprint=ctx.fingerprint,
        # A proof-of-possession token rides along: its version must still be the key's.
        token_version=ctx.bearer.key_version if ctx.bearer is not None else None,
        **_costs(ctx, services),
    )
    await _decide(ctx, services, request)


async def _decide(ctx: RequestContext, services: Services, request: AdmitRequest) -> None:
    try:
        decision = await services.guard.admit(request)
    except Exception:
        raise ProblemError("guard_unavailable") from None
    ctx.admission = decision
    ctx.response_headers.extend(rate_limit_headers(decision.limits, decision.retry_after))
    if decision.outcome == "refused":
        assert decision.code is not None
        if decision.retry_after is not None:
            seconds = max(1, int(decision.retry_after + 0.999))
            ctx.response_headers.append(("retry-after", str(seconds)))
            raise ProblemError(decision.code, retry_after=seconds)
        # budget_exceeded says which budget and when it resets (never anyone's spend).
        raise ProblemError(decision.code, **decision.budget)
    if decision.outcome == "replay":
        stored = decision.stored
        assert stored is not None
        ctx.response = GateResponse(
            stored.status, stored.body, [*stored.headers, ("idempotency-replayed", "true")]
        )
