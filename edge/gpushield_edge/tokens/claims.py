"""JWT claim checks (RFC 7519 §4.1, RFC 9068 §4): time, issuer, audience, type.

Numbers must be JSON numbers (a boolean is not one, and neither is a numeric string); `exp`
and `iat` are required — RFC 9068 §2.2 makes both mandatory, and a token that never expires
is exactly what this project exists to stop; `nbf` is honoured when present. Clock skew is
one small allowance applied in the token holder's favour on every bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpushield_wire.errors import ProblemError


def number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise ProblemError("token_claims_invalid", f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ProblemError("token_claims_invalid", f"{name} must be a number")
    return float(value)


@dataclass(frozen=True, slots=True)
class ClaimRules:
    issuer: str
    audience: str
    skew_s: float
    max_lifetime_s: float


def check_claims(claims: dict[str, Any], rules: ClaimRules, now: float) -> None:
    """Raises the specific token_* code for the first rule the claims break."""
    if claims.get("iss") != rules.issuer:
        raise ProblemError("token_issuer_unknown")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if (not isinstance(audiences, list) or not audiences
            or not all(isinstance(a, str) for a in audiences)):
        raise ProblemError("token_audience_invalid")
    if rules.audience not in audiences:
        raise ProblemError("token_audience_invalid")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= 256:
        raise ProblemError("token_claims_invalid", "sub is required")
    exp = number(claims, "exp", required=True)
    iat = number(claims, "iat", required=True)
    nbf = number(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if now >= exp + rules.skew_s:
        raise ProblemError("token_expired")
    if nbf is not None and now + rules.skew_s < nbf:
        raise ProblemError("token_not_yet_valid")
    if now + rules.skew_s < iat:
        raise ProblemError("token_issued_in_future")
    if exp - iat > rules.max_lifetime_s or exp <= iat:
        raise ProblemError("token_lifetime_too_long", limit=int(rules.max_lifetime_s))


def scope_list(value: Any) -> tuple[str, ...]:
    """RFC 9068 §2.2.3 / RFC 6749 §3.3: a space-separated string; some IdPs send a list."""
    if isinstance(value, str):
        return tuple(part for part in value.split(" ") if part)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()
