"""Strict compact JWS parsing (RFC 7515 §7.1), before any key is touched.

Everything an attacker controls is bounded and checked here: three base64url segments
(RFC 7515 §2: the URL-safe alphabet *without* padding, so '=', '+', '/', whitespace and
anything else are refused rather than skipped), a size cap on every segment and on the whole
token, a protected header that is a JSON object without duplicate members (RFC 7515 §5.2
step 4 lets a parser either fail or take the last one; two parsers in a chain disagreeing is
how confusion attacks start, so we fail), and header parameters that would make the token
choose its own key or processing rules are refused outright (RFC 8725 §3.1, §3.10):

    alg: none        an unsecured JWS is never a credential
    jku, x5u         a URL to fetch keys from: the token would pick its own trust anchor
    jwk, x5c         a key embedded in the token: ditto
    crit             no extension is understood, so any critical one must be refused (§4.1.11)
    b64              RFC 7797 unencoded payloads change what is signed
    zip, enc         JWE parameters: this is not a JWS we accept
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Final

from gpushield_wire.errors import ProblemError
from gpushield_wire.jsonbody import parse_json

# Caps (characters of the encoded form). An RS512/4096-bit signature is 683 characters; a
# gate token is ~600 in all; OIDC access tokens with group claims run to a few KB.
MAX_TOKEN_CHARS: Final = 8192
MAX_HEADER_CHARS: Final = 1024
MAX_PAYLOAD_CHARS: Final = 6144
MAX_SIGNATURE_CHARS: Final = 700
MAX_HEADER_MEMBERS: Final = 16
MAX_KID_CHARS: Final = 256
# Headers are flat and claims nest a few levels (`cnf`, an IdP's `realm_access.roles`). Deeper
# JSON is refused before it is parsed: the payload is parsed before any signature is checked,
# and under Pyodide deep nesting overflows the WebAssembly stack (see jsonbody.check_nesting).
MAX_JSON_DEPTH: Final = 32

_B64URL: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
FORBIDDEN_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64", "zip", "enc"})
# Algorithms that can exist in a trusted key set (see jwk.py); anything else is refused
# before a key is looked up.
KNOWN_ALGORITHMS: Final = frozenset({
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
})


def b64url_decode(text: str, code: str = "token_malformed") -> bytes:
    """RFC 7515 §2 base64url: URL-safe alphabet, no padding, no whitespace; the unused low
    bits of the last character must be zero (otherwise two encodings decode to one value)."""
    raw = text.encode("ascii", "strict") if text.isascii() else None
    # `translate(None, alphabet)` deletes every allowed byte: anything left is foreign.
    if raw is None or raw.translate(None, _B64URL) or len(raw) % 4 == 1:
        raise ProblemError(code)
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise ProblemError(code) from None
    if b64url_encode(decoded) != text:  # non-canonical trailing bits
        raise ProblemError(code)
    return decoded


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_json_object(data: bytes, code: str, max_members: int | None = None) -> dict[str, Any]:
    """UTF-8 JSON object with unique member names (RFC 7515 §5.2, RFC 7519 §7.2 step 10), no
    NaN/Infinity and at most MAX_JSON_DEPTH levels; every refusal is `code`."""
    try:
        document = parse_json(data, max_depth=MAX_JSON_DEPTH)
    except ProblemError:
        raise ProblemError(code) from None
    if not isinstance(document, dict):
        raise ProblemError(code)
    if max_members is not None and len(document) > max_members:
        raise ProblemError(code)
    return document


@dataclass(frozen=True, slots=True)
class CompactJws:
    header: dict[str, Any]
    payload: bytes
    # ASCII(BASE64URL(header) || '.' || BASE64URL(payload)): exactly the bytes received.
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return None if kid is None else str(kid)

    def __repr__(self) -> str:
        return f"CompactJws(alg={self.alg!r}, kid={self.kid!r})"


def parse_compact(token: str) -> CompactJws:
    """Parses and checks the shape of a compact JWS; raises ProblemError with a token_* code."""
    if len(token) > MAX_TOKEN_CHARS:
        raise ProblemError("token_too_large", limit=MAX_TOKEN_CHARS)
    parts = token.split(".")
    if len(parts) != 3:  # 5 parts would be a JWE (RFC 7516 §7.1): not a signed token
        raise ProblemError("token_malformed")
    header_b64, payload_b64, signature_b64 = parts
    if (len(header_b64) > MAX_HEADER_CHARS or len(payload_b64) > MAX_PAYLOAD_CHARS
            or len(signature_b64) > MAX_SIGNATURE_CHARS):
        raise ProblemError("token_too_large")
    if not header_b64:
        raise ProblemError("token_malformed")
    header = parse_json_object(b64url_decode(header_b64), "token_malformed", MAX_HEADER_MEMBERS)
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise ProblemError("token_malformed")
    if alg.lower() == "none" or alg not in KNOWN_ALGORITHMS:
        raise ProblemError("token_alg_unsupported")
    if not signature_b64:
        raise ProblemError("token_malformed")
    payload = b64url_decode(payload_b64)
    signature = b64url_decode(signature_b64)
    if FORBIDDEN_HEADERS.intersection(header):
        raise ProblemError("token_header_forbidden")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS):
        raise ProblemError("token_malformed")
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        raise ProblemError("token_malformed")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return CompactJws(header, payload, signing_input, signature)


def encode_compact(header: dict[str, Any], payload: dict[str, Any]) -> tuple[str, bytes]:
    """(signing input text, its bytes) for a token the gate mints; compact JSON encoding."""
    text = ".".join(
        b64url_encode(json.dumps(part, separators=(",", ":"), sort_keys=True).encode())
        for part in (header, payload)
    )
    return text, text.encode("ascii")
