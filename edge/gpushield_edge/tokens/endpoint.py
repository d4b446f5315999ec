"""POST /oauth/token — OAuth 2.0 client credentials (RFC 6749 §4.4) for gpushield keys.

    POST /oauth/token
    Content-Type: application/x-www-form-urlencoded

    grant_type=client_credentials&scope=summarize%20translate

The client (a gpushield key) authenticates in exactly one of three ways (RFC 6749 §2.3):

- an RFC 9421 signature with the key's secret, in gpushield's profile (the way the SDK does
  it: the secret never travels, and a captured request cannot be replayed);
- HTTP Basic with `client_id` = key id and `client_secret` = the gss_… secret (§2.3.1);
- `client_id` and `client_secret` in the form body (§2.3.1 allows it; discouraged).

Either way the key's guard decides (keyguard/grants.py); a client secret is compared there in
constant time. `scope` is optional: a space-separated list of model names that must be a
subset of the key's scopes (default: all of them). `pop=true` with a signed request binds the
token to the key (`cnf`): it is then only accepted on requests signed by that key.

Success is RFC 6749 §5.1 JSON with `Cache-Control: no-store`. Errors are RFC 6749 §5.2 JSON
— `{"error": "invalid_client", "error_description": …}` — because that is what every OAuth
client library parses on this endpoint; they also carry gpushield's catalog `code` (the
specific reason: signature_invalid, key_revoked, …) so the SDK maps them to the same typed
exceptions as a problem+json answer. invalid_client is 401 with WWW-Authenticate.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final
from urllib.parse import parse_qsl, unquote_plus

from gpushield_wire import credentials, signing
from gpushield_wire.errors import CATALOG, ProblemError

from ..context import RequestContext, Services
from ..http import GateResponse
from ..keyguard import GrantRequest
from ..stages.authenticate import nonce_expiry, signed_base
from .service import TokenService

PATH: Final = "/oauth/token"
MAX_BODY: Final = 4096
_FORM: Final = "application/x-www-form-urlencoded"
_NO_STORE: Final = [("cache-control", "no-store"), ("pragma", "no-cache")]
# Guard refusals that mean "you did not prove who you are" → invalid_client (401); the key's
# state (revoked, expired, quarantined) → invalid_grant (400).
_KEY_STATE: Final = frozenset({"key_revoked", "key_expired", "key_quarantined"})
_OAUTH_ERROR: Final = {
    "oauth_invalid_request": "invalid_request", "oauth_invalid_client": "invalid_client",
    "oauth_invalid_grant": "invalid_grant", "oauth_invalid_scope": "invalid_scope",
    "oauth_unsupported_grant_type": "unsupported_grant_type", "method_not_allowed":
    "invalid_request", "body_too_large": "invalid_request", "headers_too_large":
    "invalid_request",
}


def oauth_error(code: str, status: int | None = None) -> GateResponse:
    kind = CATALOG.get(code) or CATALOG["internal_error"]
    if code in _OAUTH_ERROR:
        error = _OAUTH_ERROR[code]
    elif code in _KEY_STATE:
        error, status = "invalid_grant", 400
    elif kind.status >= 500:
        error = "temporarily_unavailable" if kind.retryable else "server_error"
    else:
        error, status = "invalid_client", 401
    status = status or kind.status
    headers = list(_NO_STORE)
    if error == "invalid_client":
        headers.append(("www-authenticate", 'Basic realm="gpushield"'))
    body = {"error": error, "error_description": kind.title, "code": code}
    return GateResponse.json(status, body, headers)


def _form(ctx: RequestContext) -> dict[str, str]:
    request = ctx.request
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != _FORM:
        raise ProblemError("oauth_invalid_request", "body must be " + _FORM)
    try:
        text = request.body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise ProblemError("oauth_invalid_request") from None
    form = dict(pairs)
    if len(form) != len(pairs):  # RFC 6749 §3.2: parameters MUST NOT repeat
        raise ProblemError("oauth_invalid_request", "a parameter is repeated")
    return form


def _basic(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise ProblemError("oauth_invalid_client") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise ProblemError("oauth_invalid_client")
    return unquote_plus(client_id), unquote_plus(secret)  # RFC 6749 §2.3.1 form-encoding


async def _signed_grant(ctx: RequestContext, services: Services) -> GrantRequest:
    headers = ctx.request.headers
    parsed = signing.parse_signature(headers.get("signature-input"), headers.get("signature"))
    base = await signed_base(ctx, services, parsed)
    ctx.signature = parsed
    return GrantRequest(
        key_id=str(parsed.keyid), now=ctx.now, method="signature", alg=str(parsed.alg),
        signature_base=base, signature=parsed.signature, nonce=str(parsed.nonce),
        nonce_expires_at=nonce_expiry(parsed, services.config),
    )


async def _client(ctx: RequestContext, services: Services, form: dict[str, str]
                  ) -> GrantRequest:
    headers = ctx.request.headers
    authorization = headers.get("authorization", "")
    signed = "signature-input" in headers or "signature" in headers
    basic = authorization[:6].lower() == "basic "
    posted = "client_secret" in form
    if signed + basic + posted + bool(authorization and not basic) > 1:
        raise ProblemError("oauth_invalid_request", "use exactly one client authentication")
    if signed:
        grant = await _signed_grant(ctx, services)
        if form.get("client_id", grant.key_id) != grant.key_id:
            raise ProblemError("oauth_invalid_client")
        return grant
    if basic:
        client_id, secret_text = _basic(authorization)
    elif posted:
        client_id, secret_text = form.get("client_id", ""), form["client_secret"]
    else:
        raise ProblemError("oauth_invalid_client")
    if not credentials.is_key_id(client_id):
        raise ProblemError("oauth_invalid_client")
    ctx.principal = client_id
    try:
        secret = credentials.parse_secret(secret_text)
    except ValueError:
        raise ProblemError("oauth_invalid_client") from None
    return GrantRequest(key_id=client_id, now=ctx.now, method="secret", client_secret=secret)


def _scopes(requested: str | None, allowed: tuple[str, ...], models: set[str]
            ) -> tuple[str, ...]:
    if requested is None:
        return allowed
    wanted = tuple(dict.fromkeys(part for part in requested.split(" ") if part))
    if not wanted:
        raise ProblemError("oauth_invalid_scope")
    for model in wanted:
        if model not in models or ("*" not in allowed and model not in allowed):
            raise ProblemError("oauth_invalid_scope")
    return wanted


async def handle(ctx: RequestContext, services: Services) -> GateResponse:
    """Answers the token request; every refusal is an OAuth error with the catalog code."""
    ctx.stage = "token"
    try:
        tokens = services.tokens
        if tokens is None:
            raise ProblemError("tokens_disabled")
        return await _issue(ctx, services, tokens)
    except ProblemError as error:
        ctx.code = error.code
        if error.code == "tokens_disabled":
            return GateResponse.json(404, {"error": "invalid_request", "code": error.code})
        return oauth_error(error.code)


async def _issue(ctx: RequestContext, services: Services, tokens: TokenService
                 ) -> GateResponse:
    request = ctx.request
    if request.method != "POST":
        raise ProblemError("method_not_allowed")
    if request.header_bytes > services.config.max_header_bytes:
        raise ProblemError("headers_too_large")
    if request.body_truncated or len(request.body) > MAX_BODY:
        raise ProblemError("body_too_large")
    form = _form(ctx)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise ProblemError("oauth_invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise ProblemError("oauth_unsupported_grant_type")
    grant_request = await _client(ctx, services, form)
    bind = form.get("pop") in ("true", "1")
    if bind and grant_request.method != "signature":
        raise ProblemError("oauth_invalid_request", "pop needs a signed token request")
    try:
        decision = await services.guard.grant(grant_request)
    except Exception:
        raise ProblemError("guard_unavailable") from None
    if decision.outcome != "granted":
        raise ProblemError(decision.code or "oauth_invalid_client")
    assert decision.key_version is not None
    scopes = _scopes(form.get("scope"), decision.scopes, set(services.config.models))
    token, expires_in = await tokens.issuer.mint(
        key_id=grant_request.key_id, key_version=decision.key_version, scopes=scopes,
        ttl_s=decision.token_ttl_s, now=ctx.now,
        bound_key_id=grant_request.key_id if bind else None,
    )
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in,
            "scope": " ".join(scopes)}
    return GateResponse(200, json.dumps(body, separators=(",", ":")).encode(),
                        [("content-type", "application/json"), *_NO_STORE])
