"""The gate's token machinery in one object: its own issuer and the verifier that trusts it
and the configured external issuers. Built once per gate by the runtime (which knows where
the signing key lives); `Services.tokens` is None when `[tokens] enabled = false`."""

from __future__ import annotations

from dataclasses import dataclass

from ..ports import Crypto, Upstream
from .config import TokensConfig
from .issuer import GateIssuer
from .oidc import ExternalIssuer
from .verifier import BearerVerifier


@dataclass(frozen=True, slots=True)
class TokenService:
    issuer: GateIssuer
    verifier: BearerVerifier

    def __repr__(self) -> str:
        return f"TokenService(issuer={self.issuer.issuer!r})"


def build_token_service(
    config: TokensConfig, signing_key_text: str, crypto: Crypto, upstream: Upstream,
    *, skew_s: float,
) -> TokenService | None:
    if not config.enabled:
        return None
    issuer = GateIssuer(config.issuer, config.audience, signing_key_text, crypto, skew_s=skew_s)
    external = [ExternalIssuer(entry, upstream, skew_s=skew_s) for entry in config.external]
    return TokenService(issuer, BearerVerifier([issuer, *external], crypto))
