"""The `[tokens]` section of the gate configuration.

    [tokens]
    enabled = true                       # /oauth/token, /.well-known/jwks.json, Bearer auth
    issuer = "https://api.example.com"   # `iss` of the gate's tokens; default below
    audience = "https://api.example.com" # `aud` they carry and must carry; default = issuer

    [tokens.issuers.acme]                # an external OIDC provider (any number)
    issuer = "https://login.acme.example/"
    jwks_url = "https://login.acme.example/.well-known/jwks.json"
    audience = "gpushield-api"           # required: a token for another API is refused
    algorithms = ["RS256"]               # allowlist; RS/PS/ES 256-512, EdDSA; HS256 see below
    key_id = "gsk_…"                     # the gpushield key whose limits these tokens use
    scope_claim = "scope"
    scope_map = { "summarize:use" = ["summarize"] }   # optional claim value → models
    # shared_secret_env = "ACME_HS256_SECRET"   # HS256 only: ≥ 32 bytes, not a known secret

The gate's issuer defaults to `https://{gate.public_authority}` when that is set, else
`urn:gpushield:gate`. A configuration problem stops the gate at start (ValueError naming
the setting, never a secret's value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..sections import reject_unknown
from .jwk import EC_CURVES, HMAC_KEY_BYTES, RSA_ALGORITHMS
from .oidc import DEFAULT_TYPS, IssuerConfig
from .weak_secrets import check_shared_secret

DEFAULT_ISSUER = "urn:gpushield:gate"
_ASYMMETRIC = frozenset({*RSA_ALGORITHMS, *EC_CURVES, "EdDSA"})
_ISSUER_SETTINGS = {
    "issuer", "jwks_url", "audience", "algorithms", "key_id", "scope_claim", "scope_map",
    "shared_secret_env", "typs", "max_lifetime_s", "jwks_ttl_s", "min_refetch_s",
}


@dataclass(frozen=True, slots=True)
class TokensConfig:
    enabled: bool = True
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_ISSUER
    external: tuple[IssuerConfig, ...] = ()


def _external(name: str, entry: Mapping[str, Any], secrets: Mapping[str, str]) -> IssuerConfig:
    where = f"tokens.issuers.{name}"
    reject_unknown(where, entry, _ISSUER_SETTINGS)
    algorithms = entry.get("algorithms", ["RS256"])
    if (not isinstance(algorithms, list) or not algorithms
            or not all(a in _ASYMMETRIC or a == "HS256" for a in algorithms)):
        raise ValueError(f"[{where}] algorithms must be a subset of "
                         f"{sorted(_ASYMMETRIC)} or exactly ['HS256']")
    secret: bytes | None = None
    if "shared_secret_env" in entry:
        env = str(entry["shared_secret_env"])
        value = secrets.get(env)
        if not value:
            raise ValueError(f"[{where}] environment variable {env} is not set")
        secret = value.encode("utf-8")
        check_shared_secret(secret, f"[{where}] {env}")
        if len(secret) < HMAC_KEY_BYTES["HS256"]:  # pragma: no cover - checked above
            raise ValueError(f"[{where}] secret too short")
    scope_map = entry.get("scope_map")
    if scope_map is not None:
        if not isinstance(scope_map, dict) or not all(
                isinstance(v, list) and all(isinstance(m, str) for m in v)
                for v in scope_map.values()):
            raise ValueError(f"[{where}] scope_map maps claim values to lists of models")
        scope_map = {str(k): tuple(v) for k, v in scope_map.items()}
    typs = entry.get("typs")
    for required in ("issuer", "audience", "key_id"):
        if not isinstance(entry.get(required), str) or not entry[required]:
            raise ValueError(f"[{where}] {required} is required")
    return IssuerConfig(
        issuer=entry["issuer"], audience=entry["audience"], key_id=entry["key_id"],
        algorithms=frozenset(algorithms), jwks_url=entry.get("jwks_url"),
        shared_secret=secret, scope_claim=str(entry.get("scope_claim", "scope")),
        scope_map=scope_map,
        typs=DEFAULT_TYPS if typs is None else frozenset(None if t == "" else str(t)
                                                         for t in typs),
        max_lifetime_s=float(entry.get("max_lifetime_s", 24 * 3600.0)),
        jwks_ttl_s=float(entry.get("jwks_ttl_s", 600.0)),
        min_refetch_s=float(entry.get("min_refetch_s", 60.0)),
    )


def parse_tokens_config(
    document: Mapping[str, Any], secrets: Mapping[str, str], public_authority: str | None
) -> TokensConfig:
    document = dict(document)
    reject_unknown("tokens", document, {"enabled", "issuer", "audience", "issuers"})
    issuer = str(document.get("issuer") or (
        f"https://{public_authority}" if public_authority else DEFAULT_ISSUER))
    external = tuple(_external(name, dict(entry), secrets)
                     for name, entry in dict(document.get("issuers", {})).items())
    names = [config.issuer for config in external]
    if issuer in names or len(set(names)) != len(names):
        raise ValueError("[tokens] every issuer must be distinct (and not the gate's own)")
    return TokensConfig(
        enabled=bool(document.get("enabled", True)), issuer=issuer,
        audience=str(document.get("audience") or issuer), external=external,
    )
