"""Stage 4 — inspect: the WAF rules over the request's path, query, headers and JSON strings.

Runs after the input policy (so the body is known to be a bounded, well-shaped input) and
before admission (so a refused payload costs no rate-limit token, nonce or lease). The
decision's rule ids and score go to the audit event in every mode, shadow included; a block
answers `request_blocked` with the same ids and score — never the matched text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from gpushield_wire.errors import ProblemError

from ..context import RequestContext, Services
from ..waf import Engine, WafSettings, load_rules, request_items

# Header fields the gate parses itself with strict grammars (signature, digest, length...),
# or that carry credentials: inspecting them only produces noise.
SKIP_HEADERS = frozenset({
    "host", "content-length", "content-type", "signature", "signature-input",
    "content-digest", "authorization", "idempotency-key",
})


@lru_cache(maxsize=8)
def engine_for(settings: WafSettings) -> Engine:
    """One engine per configuration, built on first use (rules are parsed once per isolate)."""
    return Engine(load_rules(), settings)


def json_items(payload: Any, prompt_field: str) -> list[tuple[str, str]]:
    """The input's strings as targets: the prompt field is `prompt`, the rest `json`."""
    items: list[tuple[str, str]] = []
    stack: list[tuple[Any, bool]] = [(payload, False)]
    while stack:
        node, is_prompt = stack.pop()
        if isinstance(node, str):
            items.append(("prompt" if is_prompt else "json", node))
        elif isinstance(node, dict):
            stack.extend((value, node is payload and key == prompt_field)
                         for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, False) for value in node)
    return items


async def run(ctx: RequestContext, services: Services) -> None:
    settings = services.config.waf
    assert ctx.model is not None
    route = ctx.model.name
    if settings.mode == "off" and dict(settings.routes).get(route, "off") == "off":
        return
    request = ctx.request
    items = request_items(request.path, request.query, request.headers, SKIP_HEADERS)
    items.extend(json_items(ctx.input, ctx.model.policy.prompt_field))
    decision = engine_for(settings).evaluate(items, route=route)
    if decision.rule_ids or decision.error:
        ctx.waf = decision.audit()
    if decision.action == "block":
        extra: dict[str, Any] = {"rule_ids": list(decision.rules_sorted), "score": decision.score}
        if decision.error:
            extra["reason"] = "inspection_error"
        raise ProblemError("request_blocked", **extra)
