"""External identity providers: tokens minted elsewhere (users log in with an OIDC provider),
accepted for models under one gpushield key that carries the limits.

Each issuer is configured explicitly — `issuer`, `jwks_url`, `audience` (required), the
`algorithms` it may use (RS256/ES256/EdDSA and friends; HS256 only with an explicit shared
secret, see `weak_secrets.py`), and `key_id`: the gpushield key whose status, rate limit,
concurrency cap and scopes apply to every token from this issuer (revoking that key cuts the
whole provider off at once). Model scope comes from a claim (`scope_claim`, default "scope"),
optionally mapped through `scope_map` (claim value → models); a value without a mapping
grants nothing.

The JWKS is fetched through the gate's Upstream port (so at the edge it is `fetch`), cached
for `jwks_ttl_s`, and refetched early on an unknown `kid` — at most once per
`min_refetch_s`, so a flood of tokens with random kids cannot turn the gate into a load
generator against the provider. A failed refresh keeps the last good set until it is
`max_stale_s` old; with no usable set the gate refuses (issuer_keys_unavailable, 503).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpushield_wire import credentials
from gpushield_wire.errors import ProblemError

from ..ports import Upstream, UpstreamError, UpstreamRequest
from .claims import ClaimRules, scope_list
from .jwk import JwkError, KeySet, TrustedKey, build_keyset, parse_jwks_document
from .verifier import Grant

logger = logging.getLogger("gpushield.gate")

MAX_JWKS_BYTES = 64 * 1024
DEFAULT_TYPS: frozenset[str | None] = frozenset({None, "JWT", "at+jwt", "application/at+jwt"})


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    issuer: str
    audience: str
    key_id: str
    algorithms: frozenset[str]
    jwks_url: str | None = None
    # HS256 issuers: the secret (bytes of the environment variable's value), never from a URL.
    shared_secret: bytes | None = field(default=None, repr=False)
    scope_claim: str = "scope"
    scope_map: Mapping[str, tuple[str, ...]] | None = None
    typs: frozenset[str | None] = DEFAULT_TYPS
    max_lifetime_s: float = 24 * 3600.0
    jwks_ttl_s: float = 600.0
    min_refetch_s: float = 60.0
    max_stale_s: float = 24 * 3600.0
    fetch_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.audience:
            raise ValueError(f"issuer {self.issuer}: audience is required")
        if not credentials.is_key_id(self.key_id):
            raise ValueError(f"issuer {self.issuer}: key_id must be a gpushield key id")
        hmac_algs = {a for a in self.algorithms if a.startswith("HS")}
        if hmac_algs and (hmac_algs != {"HS256"} or self.shared_secret is None
                          or len(self.algorithms) != 1):
            raise ValueError(f"issuer {self.issuer}: HS256 needs shared_secret_env and "
                             "cannot be mixed with other algorithms")
        if not hmac_algs and self.jwks_url is None:
            raise ValueError(f"issuer {self.issuer}: jwks_url is required")


class ExternalIssuer:
    """A `TrustedIssuer` for one identity provider."""

    def __init__(self, config: IssuerConfig, upstream: Upstream, *, skew_s: float = 30.0
                 ) -> None:
        self.config = config
        self.issuer = config.issuer
        self.algorithms = config.algorithms
        self.typs = config.typs
        self._upstream = upstream
        self._rules = ClaimRules(config.issuer, config.audience, skew_s, config.max_lifetime_s)
        self._keyset: KeySet | None = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        if config.shared_secret is not None:
            self._keyset = KeySet((TrustedKey(None, "HS256", {"kty": "oct"},
                                              config.shared_secret),))

    def __repr__(self) -> str:
        return f"ExternalIssuer(issuer={self.issuer!r})"

    def rules(self) -> ClaimRules:
        return self._rules

    async def keyset(self, kid: str | None, now: float, *, refresh: bool) -> KeySet:
        if self.config.shared_secret is not None:
            assert self._keyset is not None
            return self._keyset
        stale = now - self._fetched_at >= self.config.jwks_ttl_s
        may_fetch = now - self._attempted_at >= self.config.min_refetch_s
        if (stale or refresh) and (may_fetch or (self._keyset is None and stale)):
            await self._fetch(now)
        if self._keyset is None or now - self._fetched_at > self.config.max_stale_s:
            raise ProblemError("issuer_keys_unavailable")
        return self._keyset

    async def _fetch(self, now: float) -> None:
        self._attempted_at = now
        url = self.config.jwks_url
        assert url is not None
        try:
            response = await self._upstream.send(UpstreamRequest(
                "GET", url, {"accept": "application/jwk-set+json, application/json"}, None,
                self.config.fetch_timeout_s))
        except UpstreamError:
            return  # keep the last good set (bounded by max_stale_s)
        if response.status != 200 or len(response.body) > MAX_JWKS_BYTES:
            return
        try:
            jwks = parse_jwks_document(response.body)
        except JwkError:
            return
        self._keyset = build_keyset(jwks, self.algorithms, allow_symmetric=False)
        self._fetched_at = now
        if self._keyset.rejected:
            # The reasons are JwkError texts about key shapes: nothing from a request.
            logger.warning("issuer %s: %d key(s) not loaded: %s", self.issuer,
                           len(self._keyset.rejected), "; ".join(self._keyset.rejected))

    def grant(self, claims: dict[str, Any]) -> Grant:
        values = scope_list(claims.get(self.config.scope_claim))
        mapping = self.config.scope_map
        if mapping is None:
            scopes = values
        else:
            scopes = tuple(model for value in values for model in mapping.get(value, ()))
        if "*" in scopes:  # only the operator's mapping may grant everything
            scopes = tuple(s for s in scopes if s != "*") if mapping is None else scopes
        jti = claims.get("jti")
        return Grant(issuer=self.issuer, subject=str(claims["sub"]), key_id=self.config.key_id,
                     scopes=scopes, key_version=None, expires_at=float(claims["exp"]),
                     jti=jti if isinstance(jti, str) else None)

