"""Bearer token → verified grant. The order is the order of RFC 8725's advice:

1. `jws.parse_compact`: shape, sizes, base64url, header JSON, forbidden header parameters;
2. the issuer is chosen by the (not yet trusted) `iss` claim, and only trusted issuers exist;
   each carries its own algorithm allowlist, accepted `typ` values and key set;
3. the key is looked up by `kid` *only* in that issuer's key set (an external issuer's set may
   be refetched once per interval on an unknown kid), and must be bound to the header's `alg`;
4. the signature (HMAC in the standard library, everything else through the Crypto port);
5. the claims: issuer, audience, exp/nbf/iat with a small skew, maximum lifetime.

Then the grant says which gpushield key the token acts for; the key guard still checks that
key's status and version on every request (stages/bearer.py), which is what makes revocation
and rotation effective on the very next request even for an unexpired token.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gpushield_wire.errors import ProblemError

from ..ports import Crypto
from .claims import ClaimRules, check_claims
from .jwk import HMAC_KEY_BYTES, KeySet, TrustedKey, signature_length
from .jws import CompactJws, parse_compact, parse_json_object

MAX_CLAIMS = 64


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token allows. `key_id` is the gpushield key whose state (status,
    version, limits, scopes) the guard checks; `key_version` is the version the token was
    minted under (None for external issuers, whose tokens do not know our versions)."""

    issuer: str
    subject: str
    key_id: str
    scopes: tuple[str, ...]
    key_version: int | None
    expires_at: float
    # Proof of possession: the token is only valid with an RFC 9421 signature by this key id.
    bound_key_id: str | None = None
    jti: str | None = None


class TrustedIssuer(Protocol):
    """One issuer the gate accepts tokens from (its own, or an external identity provider)."""

    issuer: str
    algorithms: frozenset[str]
    typs: frozenset[str | None]

    def rules(self) -> ClaimRules: ...

    async def keyset(self, kid: str | None, now: float, *, refresh: bool) -> KeySet:
        """The trusted keys; `refresh` asks for a refetch (an unknown kid), which the issuer
        may decline (rate limited)."""

    def grant(self, claims: dict[str, Any]) -> Grant:
        """Maps verified claims onto a Grant; ProblemError if they cannot be mapped."""


async def verify_signature(jws: CompactJws, key: TrustedKey, crypto: Crypto) -> bool:
    """RFC 8725 §3.1: the header alg must be the one algorithm this key is bound to."""
    if jws.alg != key.alg:
        return False
    if len(jws.signature) != signature_length(key.alg, key):
        return False
    if key.alg in HMAC_KEY_BYTES:
        expected = hmac.new(key.secret, jws.signing_input, "sha" + key.alg[2:]).digest()
        return hmac.compare_digest(expected, jws.signature)
    return await crypto.jws_verify(key.alg, key.public, jws.signing_input, jws.signature)


async def verify_jws(
    token: str, keyset: KeySet, allowed: Iterable[str], crypto: Crypto
) -> CompactJws:
    """The JWS layer alone (no claims): parse, algorithm allowlist, trusted key, signature.
    Used by the verifier below and by the Wycheproof/cookbook corpus tests."""
    jws = parse_compact(token)
    if jws.alg not in frozenset(allowed):
        raise ProblemError("token_alg_unsupported")
    key = keyset.find(jws.kid, jws.alg)
    if key is None:
        raise ProblemError("token_kid_unknown")
    if key.alg != jws.alg:
        raise ProblemError("token_alg_unsupported")
    if not await verify_signature(jws, key, crypto):
        raise ProblemError("token_signature_invalid")
    return jws


class BearerVerifier:
    def __init__(self, issuers: Iterable[TrustedIssuer], crypto: Crypto) -> None:
        self._issuers: Mapping[str, TrustedIssuer] = {i.issuer: i for i in issuers}
        self._crypto = crypto

    @property
    def issuers(self) -> Mapping[str, TrustedIssuer]:
        return self._issuers

    async def verify(self, token: str, now: float) -> Grant:
        jws = parse_compact(token)
        claims = parse_json_object(jws.payload, "token_claims_invalid", MAX_CLAIMS)
        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise ProblemError("token_issuer_unknown")
        if jws.alg not in issuer.algorithms:
            raise ProblemError("token_alg_unsupported")
        if jws.header.get("typ") not in issuer.typs:
            raise ProblemError("token_type_invalid")
        keyset = await issuer.keyset(jws.kid, now, refresh=False)
        key = keyset.find(jws.kid, jws.alg)
        if key is None:
            keyset = await issuer.keyset(jws.kid, now, refresh=True)
            key = keyset.find(jws.kid, jws.alg)
        if key is None:
            raise ProblemError("token_kid_unknown")
        if key.alg != jws.alg:
            raise ProblemError("token_alg_unsupported")
        if not await verify_signature(jws, key, self._crypto):
            raise ProblemError("token_signature_invalid")
        check_claims(claims, issuer.rules(), now)
        return issuer.grant(claims)
