"""Stage 2, the token branch of authenticate: `Authorization: Bearer <JWT>` (RFC 6750 §2.1).

The token is verified here, without the key guard (tokens/verifier.py: strict JWS, trusted
issuer and key, claims); its model scope must include the model. The guard then checks the
key the token acts for — status and, for the gate's own tokens, the version the token was
minted under — in the `admit` stage, with rate and concurrency as for a signed request, but
no nonce: a bearer token is meant to be reused until it expires.

A token bound to a key (`cnf`, proof of possession) is only accepted together with a valid
RFC 9421 signature by that very key (checked by the signature branch and the guard), so a
stolen bound token is useless alone. An unbound token together with a signature is refused as
ambiguous: one request, one credential.
"""

from __future__ import annotations

import re

from gpushield_wire.errors import ProblemError

from ..context import RequestContext, Services

# RFC 6750 §2.1: "Bearer" 1*SP b64token, b64token = 1*( ALPHA / DIGIT / "-._~+/" ) *"="
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9._~+/-]+=*)")


def present(headers: dict[str, str]) -> bool:
    """Any Authorization header naming the Bearer scheme (even with a broken credential,
    which is then refused as token_malformed rather than as a missing signature)."""
    value = headers.get("authorization", "").strip()
    return value.split(" ", 1)[0].lower() == "bearer"


def token_of(header: str) -> str:
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        raise ProblemError("token_malformed")
    return match.group(1)


async def run(ctx: RequestContext, services: Services) -> None:
    tokens = services.tokens
    if tokens is None:
        raise ProblemError("token_issuer_unknown")
    token = token_of(ctx.request.headers["authorization"])
    grant = await tokens.verifier.verify(token, ctx.now)
    model = ctx.model
    assert model is not None
    if "*" not in grant.scopes and model.name not in grant.scopes:
        raise ProblemError("model_not_in_scope")
    signed = "signature" in ctx.request.headers or "signature-input" in ctx.request.headers
    if grant.bound_key_id is not None and not signed:
        raise ProblemError("token_pop_required")
    if grant.bound_key_id is None and signed:
        raise ProblemError("token_auth_ambiguous")
    ctx.bearer = grant
    ctx.principal = grant.key_id
