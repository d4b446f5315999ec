"""The guard's half of the token endpoint: authenticate the client, then say what it may get.

Two ways to authenticate (RFC 6749 §2.3): an RFC 9421 signature under the key's secret —
verified exactly like an inference request, nonce included — or the client secret itself
(`client_secret_basic` / `client_secret_post`), compared in constant time here, inside the
guard, so the stored secret never leaves it. Either way the decision then re-reads the key in
one transaction and insists on the version authentication saw, like `admit`.
"""

from __future__ import annotations

import functools
import hmac
import json
from dataclasses import dataclass, field

from .guard import KeyGuardCore, unusable
from .records import AdmitRequest
from .rotation import live_secrets


@dataclass(frozen=True, slots=True)
class GrantRequest:
    key_id: str
    now: float
    # "signature": the fields below as in AdmitRequest; "secret": `client_secret` only.
    method: str = "signature"
    alg: str = ""
    signature_base: bytes = b""
    signature: bytes = b""
    nonce: str = ""
    nonce_expires_at: float = 0.0
    client_secret: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class GrantResult:
    outcome: str  # "granted" | "refused"
    code: str | None = None
    key_version: int | None = None
    scopes: tuple[str, ...] = ()
    token_ttl_s: int = 600


async def _secret_version(core: KeyGuardCore, request: GrantRequest) -> GrantResult | int:
    rows = core.storage.query(
        "SELECT sealed_secret, version, prev_sealed_secret, prev_valid_until, alg "
        "FROM keys WHERE key_id = ?", (request.key_id,))
    if not rows:
        return GrantResult("refused", code="key_unknown")
    sealed, version, prev_sealed, prev_valid_until, alg = rows[0]
    if alg != "hmac-sha256":
        return GrantResult("refused", code="signature_alg_unsupported")
    matched = False
    for candidate in live_secrets(sealed, prev_sealed, prev_valid_until, request.now):
        try:
            material = await core._key_material(request.key_id, candidate)
        except ValueError:
            return GrantResult("refused", code="guard_unavailable")
        matched |= hmac.compare_digest(material, request.client_secret)
    if not matched:
        return GrantResult("refused", code="signature_invalid")
    return int(version)


def _decide(core: KeyGuardCore, request: GrantRequest, version: int) -> GrantResult | None:
    query = core.storage.query
    rows = query("SELECT scopes, status, version, expires_at, token_ttl_s FROM keys "
                 "WHERE key_id = ?", (request.key_id,))
    if not rows:
        return GrantResult("refused", code="key_unknown")
    scopes, status, current, expires_at, token_ttl = rows[0]
    if int(current) != version:
        return None
    refusal = unusable(status, expires_at, request.now)
    if refusal is not None:
        return GrantResult("refused", code=refusal)
    if request.method == "signature":
        if query("SELECT 1 FROM nonces WHERE key_id = ? AND nonce = ? AND expires_at >= ?",
                 (request.key_id, request.nonce, request.now)):
            return GrantResult("refused", code="signature_replayed")
        query("INSERT OR REPLACE INTO nonces (key_id, nonce, expires_at) VALUES (?, ?, ?)",
              (request.key_id, request.nonce, request.nonce_expires_at))
    return GrantResult("granted", key_version=version, scopes=tuple(json.loads(scopes)),
                       token_ttl_s=600 if token_ttl is None else int(token_ttl))


async def grant(core: KeyGuardCore, request: GrantRequest) -> GrantResult:
    for _ in range(2):
        if request.method == "secret":
            verdict: object = await _secret_version(core, request)
        else:
            verdict = await core._authenticate(AdmitRequest(
                key_id=request.key_id, alg=request.alg, signature_base=request.signature_base,
                signature=request.signature, model="", nonce=request.nonce,
                nonce_expires_at=request.nonce_expires_at, now=request.now, lease_ttl_s=0.0,
            ))
        if not isinstance(verdict, int):
            code = getattr(verdict, "code", None) or "signature_invalid"
            return GrantResult("refused", code=code)
        result = core.storage.atomic(functools.partial(_decide, core, request, verdict))
        if result is not None:
            return result
    return GrantResult("refused", code="guard_unavailable")
