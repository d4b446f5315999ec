"""The checks an inference request passes, in order. Read this file top to bottom.

    parse         size caps on headers and body, media type, bounded JSON
    authenticate  RFC 9421 signature shape and freshness, RFC 9530 Content-Digest
    input_policy  the model's published input bounds
    inspect       WAF rules (injection, traversal, XSS, SSRF, prompt injection, secrets)
    admit         the key's guard: signature under the key's secret, key status/expiry,
                  model scope, nonce replay, idempotency, rate, concurrency — one transaction
    forward       the backend job, under the key's per-call GPU-time cap

A stage either returns (next stage), sets `ctx.response` (answer now: an idempotent replay
or the backend's result), or raises `ProblemError` (refuse with that code). Whatever happens,
`finish` ends the lease and the audit event is written once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .context import RequestContext, Services
from .stages import admit, authenticate, forward, input_policy, inspect, parse

Stage = tuple[str, Callable[[RequestContext, Services], Awaitable[None]]]

INFER_PIPELINE: tuple[Stage, ...] = (
    ("parse", parse.run),
    ("authenticate", authenticate.run),
    ("input_policy", input_policy.run),
    ("inspect", inspect.run),
    ("admit", admit.run),
    ("forward", forward.run),
)


async def run_pipeline(ctx: RequestContext, services: Services) -> None:
    for name, stage in INFER_PIPELINE:
        ctx.stage = name
        await stage(ctx, services)
        if ctx.response is not None:
            return
