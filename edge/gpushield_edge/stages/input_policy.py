"""Stage 3 — input policy: the model's published bounds, enforced on every request.

The same `ModelPolicy` drives the SDK's local validation, so a well-behaved client never sees
these refusals; anything that reaches them did not come through the SDK's checks.
"""

from __future__ import annotations

from gpushield_wire.policy import validate_input

from ..context import RequestContext, Services


async def run(ctx: RequestContext, services: Services) -> None:
    assert ctx.model is not None
    ctx.input = validate_input(ctx.model.policy, ctx.document)
