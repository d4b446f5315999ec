"""Stage 1 — parse & size caps: refuse what is too big or not JSON before any other work.

Header and body sizes are checked against fixed caps first (cheap, and they bound everything
after); only then is the body decoded and parsed with the model's JSON depth/value caps.
"""

from __future__ import annotations

from gpushield_wire.errors import ProblemError
from gpushield_wire.jsonbody import parse_json_body

from ..context import RequestContext, Services


async def run(ctx: RequestContext, services: Services) -> None:
    request = ctx.request
    if request.header_bytes > services.config.max_header_bytes:
        raise ProblemError("headers_too_large", limit=services.config.max_header_bytes)
    assert ctx.model is not None  # the router resolved it
    policy = ctx.model.policy
    if request.body_truncated or len(request.body) > min(
        policy.max_body_bytes, services.config.max_body_bytes
    ):
        raise ProblemError("body_too_large", limit=policy.max_body_bytes)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ProblemError("unsupported_media_type")
    ctx.document = parse_json_body(
        request.body, max_depth=policy.max_json_depth, max_values=policy.max_json_values
    )
