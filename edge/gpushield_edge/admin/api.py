"""The admin API: key management over HTTP, for the CLI pointed at a deployed gate.

    GET  /admin/keys                 list keys (never secrets)
    POST /admin/keys                 create a key; the answer carries its secret, once
    GET  /admin/keys/{id}            one key and its requests in flight
    POST /admin/keys/{id}/status     {"status": "active" | "revoked" | "quarantined"}
    POST /admin/keys/{id}/rotate     {"grace_s": seconds}; the answer carries the new secret
    GET  /admin/keys/{id}/usage      spend, open reservations and budgets of one key
    POST /admin/keys/{id}/budgets    {"budgets": [...]} replaces the key's budgets

Requests are signed exactly like inference calls (RFC 9421, gpushield's profile) but with the
admin credential — key id `gpushield-admin` and a secret the gate reads from its environment
(`GPUSHIELD_ADMIN_SECRET`; `wrangler secret put` at the edge). Nonces are remembered by the
key store, so a captured admin request cannot be replayed. Without the secret the API is off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gpushield_wire import algorithms, signing
from gpushield_wire.credentials import ADMIN_KEY_ID
from gpushield_wire.errors import ProblemError
from gpushield_wire.jsonbody import parse_json_body

from ..context import RequestContext, Services
from ..http import GateResponse
from ..stages.authenticate import nonce_expiry, signed_base
from .service import STATUSES, KeyAdmin, KeyAdminError, NewKey

PREFIX = "/admin/keys"
_MAX_BODY = 16 * 1024
_KEY_ROUTE = re.compile(r"/admin/keys/([A-Za-z0-9_-]{1,64})(/status|/rotate|/usage|/budgets)?")


@dataclass(frozen=True, slots=True)
class AdminAccess:
    admin: KeyAdmin
    # None turns the API off: every admin route answers admin_disabled.
    secret: bytes | None


def _admin_credential(parsed: signing.ParsedSignature) -> None:
    """Only the admin credential signs here: its key id, and HMAC (it is a shared secret)."""
    if parsed.keyid != ADMIN_KEY_ID:
        raise ProblemError("key_unknown")
    if parsed.alg != algorithms.HMAC_SHA256:
        raise ProblemError("signature_alg_unsupported")


async def _authenticate(ctx: RequestContext, services: Services, access: AdminAccess) -> None:
    request = ctx.request
    if access.secret is None:
        raise ProblemError("admin_disabled")
    if request.header_bytes > services.config.max_header_bytes:
        raise ProblemError("headers_too_large", limit=services.config.max_header_bytes)
    if request.body_truncated or len(request.body) > _MAX_BODY:
        raise ProblemError("body_too_large", limit=_MAX_BODY)
    headers = request.headers
    parsed = signing.parse_signature(headers.get("signature-input"), headers.get("signature"))
    base = await signed_base(ctx, services, parsed, screen=_admin_credential)
    # `verify` compares the HMAC in constant time (hmac.compare_digest).
    if not algorithms.verify(algorithms.HMAC_SHA256, access.secret, base, parsed.signature):
        raise ProblemError("signature_invalid")
    ctx.signature = parsed
    expires_at = nonce_expiry(parsed, services.config)
    if not await access.admin.remember_nonce(str(parsed.nonce), expires_at, ctx.now):
        raise ProblemError("signature_replayed")


def _body(ctx: RequestContext) -> Any:
    media_type = ctx.request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ProblemError("unsupported_media_type")
    return parse_json_body(ctx.request.body, max_depth=4, max_values=256)


async def _rotate(ctx: RequestContext, admin: KeyAdmin, key_id: str, document: Any
                  ) -> GateResponse:
    grace = document.get("grace_s") if isinstance(document, dict) else None
    if (isinstance(grace, bool) or not isinstance(grace, int | float)
            or set(document) != {"grace_s"}):
        raise ProblemError("admin_request_invalid", "body must be {\"grace_s\": seconds}")
    ctx.admin_action = "rotate"
    rotated = await admin.rotate(key_id, float(grace))
    return GateResponse.json(
        200, {"key": rotated.record.to_dict(), "secret": rotated.secret,
              "previous_valid_until": rotated.previous_valid_until},
        [("cache-control", "no-store")],
    )


async def handle(ctx: RequestContext, services: Services, access: AdminAccess) -> GateResponse:
    ctx.stage = "admin_authenticate"
    await _authenticate(ctx, services, access)
    ctx.stage = "admin"
    method = ctx.request.method
    path = ctx.request.path
    admin = access.admin
    try:
        if path == PREFIX:
            if method == "GET":
                ctx.admin_action = "list"
                return GateResponse.json(200, {"keys": [r.to_dict() for r in await admin.list()]})
            if method == "POST":
                ctx.admin_action = "create"
                created = await admin.create(NewKey.from_dict(_body(ctx)))
                ctx.admin_target = created.record.key_id
                return GateResponse.json(
                    201, {"key": created.record.to_dict(), "secret": created.secret},
                    [("cache-control", "no-store")],
                )
            raise ProblemError("method_not_allowed")
        match = _KEY_ROUTE.fullmatch(path)
        if match is None:
            raise ProblemError("not_found")
        key_id, status_route = match.group(1), match.group(2)
        ctx.admin_target = key_id
        if status_route is None:
            if method != "GET":
                raise ProblemError("method_not_allowed")
            ctx.admin_action = "show"
            view = await admin.get(key_id)
            return GateResponse.json(200, {"key": view.record.to_dict(),
                                           "in_flight": view.in_flight})
        if status_route == "/usage":
            if method != "GET":
                raise ProblemError("method_not_allowed")
            ctx.admin_action = "usage"
            usage = await admin.usage(key_id, services.config.costs.account_budgets)
            return GateResponse.json(200, {"usage": usage})
        if method != "POST":
            raise ProblemError("method_not_allowed")
        document = _body(ctx)
        if status_route == "/rotate":
            return await _rotate(ctx, admin, key_id, document)
        if status_route == "/budgets":
            ctx.admin_action = "budgets"
            budgets = NewKey.from_dict({"scopes": ["*"], "budgets": document.get("budgets")
                                        if isinstance(document, dict) else None}).budgets
            await admin.set_budgets(key_id, budgets)
            return GateResponse.json(200, {"budgets": [spec.to_dict() for spec in budgets]})
        status = document.get("status") if isinstance(document, dict) else None
        if status not in STATUSES:
            raise ProblemError("admin_request_invalid",
                               "status must be one of: " + ", ".join(STATUSES))
        ctx.admin_action = f"status:{status}"
        record = await admin.set_status(key_id, status)
        return GateResponse.json(200, {"key": record.to_dict()})
    except KeyAdminError as error:
        if error.missing:
            raise ProblemError("key_not_found") from None
        raise ProblemError("admin_request_invalid", str(error)) from None
