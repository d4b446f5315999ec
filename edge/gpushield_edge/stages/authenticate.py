"""Stage 2 — authenticate: an RFC 9421 signature in gpushield's profile, and its digest.

Everything here is stateless and needs no key: the structure of Signature/Signature-Input,
the covered components, the freshness window (`created`/`expires` within the clock-skew
allowance) and the RFC 9530 Content-Digest of the body. The signature value itself is checked
by the key guard in the `admit` stage, where the secret lives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from gpushield_wire import digest, signing, structured_fields
from gpushield_wire.errors import ProblemError

from ..config import GateConfig
from ..context import RequestContext, Services
from ..ports import Crypto
from . import bearer

_MAX_IDEMPOTENCY_KEY = 255


def _idempotency_key(header: str | None) -> str | None:
    """The IETF Idempotency-Key draft makes the field an sf-string."""
    if header is None:
        return None
    try:
        item = structured_fields.parse_item(header)
    except structured_fields.ParseError:
        raise ProblemError("idempotency_key_invalid") from None
    value = item.value
    if not isinstance(value, str) or isinstance(value, structured_fields.Token):
        raise ProblemError("idempotency_key_invalid")
    if not 1 <= len(value) <= _MAX_IDEMPOTENCY_KEY:
        raise ProblemError("idempotency_key_invalid")
    return value


async def verify_body_digest(value: str | None, body: bytes, crypto: Crypto) -> None:
    """RFC 9530 check with the runtime's hashing (WebCrypto for large bodies at the edge):
    the digests are computed first, asynchronously, then compared in constant time."""
    if value is None:
        raise ProblemError("digest_missing")
    present = digest.parse_content_digest(value)
    computed = {name: await crypto.digest(name, body)
                for name in digest.checked_algorithms(present)}
    digest.check_digests(present, computed)


async def signed_base(
    ctx: RequestContext,
    services: Services,
    parsed: signing.ParsedSignature,
    *,
    has_idempotency_key: bool = False,
    screen: Callable[[signing.ParsedSignature], None] | None = None,
) -> bytes:
    """The signature base (RFC 9421 §2.5) of a request signed in gpushield's profile, after
    every check that needs no key, in this order: the profile (parameters, tag, algorithm,
    window and freshness, covered components), the body's Content-Digest, the caller's
    `screen` (the admin API insists on its own key id and algorithm there), then the base
    itself — signature_malformed if it cannot be built. Signed calls, signed token requests
    and the admin API all come through here; the signature value is checked by whoever holds
    the secret (the key guard; the admin API itself)."""
    request = ctx.request
    config = services.config
    has_body = bool(request.body)
    signing.check_profile(
        parsed,
        now=ctx.now,
        has_body=has_body,
        has_idempotency_key=has_idempotency_key,
        max_window_s=config.max_signature_window_s,
        skew_s=config.clock_skew_s,
    )
    if has_body:
        await verify_body_digest(request.headers.get("content-digest"), request.body,
                                 services.crypto)
    if screen is not None:
        screen(parsed)
    parts = signing.RequestParts(
        method=request.method,
        authority=config.public_authority or request.authority,
        path=request.path,
        query=request.query,
        headers=request.headers,
    )
    try:
        return signing.request_signature_base(parts, parsed)
    except ValueError:
        raise ProblemError("signature_malformed") from None


def nonce_expiry(parsed: signing.ParsedSignature, config: GateConfig) -> float:
    """Until when a signature's nonce is remembered: past its `expires` and the clock-skew
    allowance the signature is refused as expired anyway, so a replay cannot get through."""
    return float(parsed.expires or 0) + config.clock_skew_s


def _remember_idempotency(ctx: RequestContext, idempotency_key: str | None) -> None:
    request = ctx.request
    ctx.idempotency_key = idempotency_key
    if idempotency_key is not None:
        what = "\n".join((request.method, request.path, request.query,
                          request.headers.get("content-digest", "")))
        ctx.fingerprint = hashlib.sha256(what.encode()).hexdigest()[:32]


async def run(ctx: RequestContext, services: Services) -> None:
    request = ctx.request
    headers = request.headers
    if bearer.present(headers):
        await bearer.run(ctx, services)
        assert ctx.bearer is not None
        if ctx.bearer.bound_key_id is None:
            # No signature covers the body; a Content-Digest that is sent must still match.
            if request.body and "content-digest" in headers:
                await verify_body_digest(headers["content-digest"], request.body,
                                         services.crypto)
            _remember_idempotency(ctx, _idempotency_key(headers.get("idempotency-key")))
            return
    parsed = signing.parse_signature(headers.get("signature-input"), headers.get("signature"))
    idempotency_key = _idempotency_key(headers.get("idempotency-key"))
    ctx.signature_base = await signed_base(ctx, services, parsed,
                                           has_idempotency_key=idempotency_key is not None)
    if ctx.bearer is not None and parsed.keyid != ctx.bearer.bound_key_id:
        raise ProblemError("token_pop_mismatch")
    ctx.signature = parsed
    _remember_idempotency(ctx, idempotency_key)
