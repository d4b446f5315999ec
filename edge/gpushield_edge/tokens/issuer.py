"""The gate as an issuer: Ed25519 signing keys, their rotation with overlap, JWKS, minting.

Where the keys come from: `GPUSHIELD_TOKEN_SIGNING_KEY` (a secret: `wrangler secret put` at
the edge, the environment locally) or, for a local gate without it, `<state>/token-signing-key`
created on first start like the KEK. Its text is one or more entries separated by commas or
whitespace, each `gts_<base64url 32-byte seed>` optionally followed by `@<unix time>`:

    gts_NEW…                         the key that signs (the first entry always signs)
    gts_NEW…, gts_OLD…@1767225600    rotation: NEW signs; OLD still verifies until that time

To rotate: put the new key first and keep the old one with `@` = now + the longest token
lifetime (15 min); remove it afterwards. Tokens signed by OLD keep verifying until they
expire, and OLD stays in `/.well-known/jwks.json` until its end, so external verifiers that
cache the JWKS see no gap. Each key's `kid` is its RFC 7638 thumbprint, so nothing else needs
naming or storing.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gpushield_wire import credentials
from gpushield_wire.errors import ProblemError

from ..ports import Crypto
from .claims import ClaimRules, scope_list
from .jwk import KeySet, TrustedKey, ed25519_thumbprint
from .jws import b64url_encode, encode_compact
from .verifier import Grant

SIGNING_KEY_ENV: Final = "GPUSHIELD_TOKEN_SIGNING_KEY"
SEED_PREFIX: Final = "gts_"
TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - RFC 9068 §2.1 media type, not a secret
ACCEPTED_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_TTL_S: Final = 900
DEFAULT_TOKEN_TTL_S: Final = 600
VERSION_CLAIM: Final = "gsv"
_ENTRY = re.compile(r"gts_([A-Za-z0-9_-]{43})(?:@(\d{1,12}))?")


def new_signing_key_text() -> str:
    return SEED_PREFIX + b64url_encode(secrets.token_bytes(32))


@dataclass(frozen=True, slots=True)
class SigningKey:
    seed: bytes = field(repr=False)
    public: bytes
    kid: str
    verify_until: float | None = None

    def jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(self.public),
                "kid": self.kid, "alg": "EdDSA", "use": "sig"}


def parse_signing_keys(text: str) -> list[tuple[bytes, float | None]]:
    """Entries of GPUSHIELD_TOKEN_SIGNING_KEY; errors never echo the text."""
    entries = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    if not entries:
        raise ValueError(f"{SIGNING_KEY_ENV} is empty")
    parsed: list[tuple[bytes, float | None]] = []
    for index, entry in enumerate(entries):
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise ValueError(f"{SIGNING_KEY_ENV}: entry {index + 1} is not gts_<43 chars>[@time]")
        try:
            seed = base64.urlsafe_b64decode(match.group(1) + "=")
        except (binascii.Error, ValueError):
            raise ValueError(f"{SIGNING_KEY_ENV}: entry {index + 1} is not base64url") from None
        if index == 0 and match.group(2):
            raise ValueError(f"{SIGNING_KEY_ENV}: the first (signing) key cannot have an end")
        parsed.append((seed, float(match.group(2)) if match.group(2) else None))
    return parsed


class GateIssuer:
    """Mints the gate's access tokens and trusts them back (a `TrustedIssuer`).

    Constructed synchronously from the key text (so a bad key stops the gate at start);
    the public keys are derived through the async Crypto port on first use."""

    algorithms: frozenset[str] = frozenset({"EdDSA"})
    typs: frozenset[str | None] = frozenset(ACCEPTED_TYPES)

    def __init__(self, issuer: str, audience: str, key_text: str, crypto: Crypto,
                 *, skew_s: float = 30.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self._entries = parse_signing_keys(key_text)
        self._keys: list[SigningKey] = []
        self._crypto = crypto
        self._rules = ClaimRules(issuer, audience, skew_s, MAX_TOKEN_TTL_S)
        # The verification key set, rebuilt only when a key's overlap ends (checked per call).
        self._keyset: tuple[tuple[str, ...], KeySet] | None = None

    def __repr__(self) -> str:
        return f"GateIssuer(issuer={self.issuer!r}, keys={len(self._entries)})"

    async def keys(self) -> list[SigningKey]:
        if not self._keys:
            keys = []
            for seed, until in self._entries:
                public = await self._crypto.ed25519_public_key(seed)
                keys.append(SigningKey(seed, public, ed25519_thumbprint(public), until))
            self._keys = keys
        return self._keys

    async def live_keys(self, now: float) -> list[SigningKey]:
        return [k for k in await self.keys() if k.verify_until is None or now < k.verify_until]

    async def jwks(self, now: float) -> dict[str, Any]:
        """RFC 7517 §5 key set: the signing key and every older key still in its overlap."""
        return {"keys": [key.jwk() for key in await self.live_keys(now)]}

    async def mint(
        self,
        *,
        key_id: str,
        key_version: int,
        scopes: tuple[str, ...],
        ttl_s: int,
        now: float,
        bound_key_id: str | None = None,
    ) -> tuple[str, int]:
        """An RFC 9068 access token for `key_id`; returns (token, expires_in)."""
        ttl = max(1, min(int(ttl_s), MAX_TOKEN_TTL_S))
        issued = int(now)
        key = (await self.keys())[0]
        header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": key.kid}
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": key_id, "aud": self.audience, "client_id": key_id,
            "iat": issued, "nbf": issued, "exp": issued + ttl,
            "jti": secrets.token_urlsafe(16), "scope": " ".join(scopes),
            VERSION_CLAIM: key_version,
        }
        if bound_key_id is not None:
            claims["cnf"] = {"kid": bound_key_id}
        text, signing_input = encode_compact(header, claims)
        signature = await self._crypto.ed25519_sign(key.seed, signing_input)
        return f"{text}.{b64url_encode(signature)}", ttl

    # -- TrustedIssuer -----------------------------------------------------------------------

    def rules(self) -> ClaimRules:
        return self._rules

    async def keyset(self, kid: str | None, now: float, *, refresh: bool) -> KeySet:
        live = await self.live_keys(now)
        kids = tuple(key.kid for key in live)
        if self._keyset is None or self._keyset[0] != kids:
            self._keyset = (kids, KeySet(tuple(
                TrustedKey(key.kid, "EdDSA", {"kty": "OKP", "crv": "Ed25519",
                                              "x": b64url_encode(key.public)})
                for key in live)))
        return self._keyset[1]

    def grant(self, claims: dict[str, Any]) -> Grant:
        sub = claims.get("sub")
        version = claims.get(VERSION_CLAIM)
        if (not isinstance(sub, str) or not credentials.is_key_id(sub)
                or claims.get("client_id") != sub):
            raise ProblemError("token_claims_invalid", "sub must be a gpushield key id")
        if isinstance(version, bool) or not isinstance(version, int):
            raise ProblemError("token_claims_invalid", f"{VERSION_CLAIM} is required")
        cnf = claims.get("cnf")
        bound: str | None = None
        if cnf is not None:
            bound = cnf.get("kid") if isinstance(cnf, Mapping) else None
            if not isinstance(bound, str) or not credentials.is_key_id(bound):
                raise ProblemError("token_claims_invalid", "cnf is not understood")
        jti = claims.get("jti")
        return Grant(
            issuer=self.issuer, subject=sub, key_id=sub, scopes=scope_list(claims.get("scope")),
            key_version=version, expires_at=float(claims["exp"]), bound_key_id=bound,
            jti=jti if isinstance(jti, str) else None,
        )
