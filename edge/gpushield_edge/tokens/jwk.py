"""Trusted keys: RFC 7517 JWKs validated once, each bound to exactly one algorithm.

RFC 8725 §3.1: "each key MUST be used with exactly one algorithm, and this MUST be checked
when the cryptographic operation is performed." A `TrustedKey` therefore carries its `alg`:
the JWK's own `alg` member when present (and it must be allowed for the issuer), otherwise the
only algorithm the issuer allows for that key type (an RSA key for an issuer that allows both
RS256 and PS256 is ambiguous and not loaded). A token is verified only if its header `alg`
equals the key's — which is what makes RS/HS confusion impossible: an HMAC algorithm can only
ever meet an `oct` key the operator configured, never a public key used as a MAC secret.

Keys are typed by where they come from: symmetric (`oct`) keys come only from the gate's
configuration, never from a JWKS document fetched over the network (a "mixed key set").
Keys whose `use` is not "sig" or whose `key_ops` lack "verify" are not loaded, nor are RSA keys
under 2048 bits or with a small exponent, HMAC keys shorter than their hash (RFC 7518 §3.2),
or duplicate `kid`s (ambiguous: every key with that kid is dropped).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gpushield_wire.errors import ProblemError
from gpushield_wire.jsonbody import check_nesting

from .jws import MAX_JSON_DEPTH, b64url_decode, b64url_encode

HMAC_KEY_BYTES: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
EC_CURVES: Final = {"ES256": ("P-256", 32), "ES384": ("P-384", 48), "ES512": ("P-521", 66)}
RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
MAX_KEYS: Final = 32


class JwkError(ValueError):
    """A JWK that cannot be trusted; the message names the rule, never key material."""


def _kty_for(alg: str) -> str:
    if alg in HMAC_KEY_BYTES:
        return "oct"
    if alg in RSA_ALGORITHMS:
        return "RSA"
    if alg in EC_CURVES:
        return "EC"
    if alg == "EdDSA":
        return "OKP"
    raise JwkError(f"algorithm {alg} is not supported")


def signature_length(alg: str, key: TrustedKey) -> int:
    """The exact signature length for `alg` with this key (RFC 7518 §3.4 for ECDSA: R||S)."""
    if alg in HMAC_KEY_BYTES:
        return int(alg[2:]) // 8
    if alg in EC_CURVES:
        return 2 * EC_CURVES[alg][1]
    if alg == "EdDSA":
        return 64
    return key.rsa_bytes


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One verification key. `public` is the public JWK (members kty, crv, x, y, n, e only)
    handed to the Crypto port; `secret` is an HMAC key (oct keys only), never printed."""

    kid: str | None
    alg: str
    public: Mapping[str, str]
    secret: bytes = field(default=b"", repr=False)
    rsa_bytes: int = 0

    def __repr__(self) -> str:
        return f"TrustedKey(kid={self.kid!r}, alg={self.alg!r})"


def _b64_member(jwk: Mapping[str, Any], name: str, length: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise JwkError(f"member {name} is missing")
    try:
        raw = b64url_decode(value)
    except Exception:
        raise JwkError(f"member {name} is not base64url") from None
    if length is not None and len(raw) != length:
        raise JwkError(f"member {name} has the wrong length")
    return raw


def parse_jwk(
    jwk: Mapping[str, Any], allowed: Iterable[str], *, allow_symmetric: bool
) -> TrustedKey:
    """Validates one JWK for verification under the issuer's `allowed` algorithms."""
    allowed = frozenset(allowed)
    kty = jwk.get("kty")
    if not isinstance(kty, str):
        raise JwkError("kty is missing")
    if "use" in jwk and jwk["use"] != "sig":
        raise JwkError("key is not for signatures (use)")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise JwkError("key is not for verification (key_ops)")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise JwkError("kid must be a non-empty string")
    declared = jwk.get("alg")
    if declared is not None:
        if not isinstance(declared, str) or declared not in allowed:
            raise JwkError("key algorithm is not allowed for this issuer")
        if _kty_for(declared) != kty:
            raise JwkError("key type does not match its algorithm")
        alg = declared
    else:
        candidates = sorted(a for a in allowed if _kty_for(a) == kty)
        if kty == "EC":
            candidates = [a for a in candidates if EC_CURVES[a][0] == jwk.get("crv")]
        if len(candidates) != 1:
            raise JwkError("key has no alg and the issuer allows no single algorithm for it")
        alg = candidates[0]
    if kty == "oct":
        if not allow_symmetric:
            raise JwkError("symmetric keys are never taken from a key set document")
        secret = _b64_member(jwk, "k")
        if len(secret) < HMAC_KEY_BYTES[alg]:
            raise JwkError("HMAC key is shorter than its hash (RFC 7518 §3.2)")
        return TrustedKey(kid, alg, {"kty": "oct"}, secret)
    if kty == "RSA":
        n = _b64_member(jwk, "n")
        e = _b64_member(jwk, "e")
        if n[:1] == b"\x00" or e[:1] == b"\x00":
            raise JwkError("RSA parameters are not minimal big-endian integers")
        bits = int.from_bytes(n, "big").bit_length()
        exponent = int.from_bytes(e, "big")
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise JwkError("RSA modulus size is out of range")
        if exponent < 3 or exponent % 2 == 0 or len(e) > 8:
            raise JwkError("RSA public exponent is invalid")
        if has_roca_fingerprint(int.from_bytes(n, "big")):
            raise JwkError("RSA key was generated by a ROCA-vulnerable library")
        public = {"kty": "RSA", "n": str(jwk["n"]), "e": str(jwk["e"])}
        return TrustedKey(kid, alg, public, rsa_bytes=(bits + 7) // 8)
    if kty == "EC":
        curve, size = EC_CURVES[alg]
        if jwk.get("crv") != curve:
            raise JwkError("curve does not match the algorithm")
        _b64_member(jwk, "x", size)
        _b64_member(jwk, "y", size)
        public = {"kty": "EC", "crv": curve, "x": str(jwk["x"]), "y": str(jwk["y"])}
        return TrustedKey(kid, alg, public)
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise JwkError("only Ed25519 OKP keys are supported")
        _b64_member(jwk, "x", 32)
        return TrustedKey(kid, alg, {"kty": "OKP", "crv": "Ed25519", "x": str(jwk["x"])})
    raise JwkError("key type is not supported")


@dataclass(frozen=True, slots=True)
class KeySet:
    """Keys trusted for one issuer, by kid. `rejected` counts keys that were not loaded (for
    operators' diagnostics; the reasons are the JwkError messages, kept out of responses)."""

    keys: tuple[TrustedKey, ...] = ()
    rejected: tuple[str, ...] = ()

    def find(self, kid: str | None, alg: str) -> TrustedKey | None:
        """The key for `kid`; without a kid, the only key bound to `alg` (else none)."""
        if kid is not None:
            for key in self.keys:
                if key.kid == kid:
                    return key
            return None
        matching = [key for key in self.keys if key.alg == alg]
        return matching[0] if len(matching) == 1 else None


# ROCA (CVE-2017-15361, Nemec et al. 2017): moduli from the affected Infineon library satisfy
# n mod p ∈ <65537> (mod p) for every small prime p; a random modulus fails this for some p
# with overwhelming probability. These are the primes of the authors' published detector.
_ROCA_PRIMES: Final = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67,
                       71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139,
                       149, 151, 157, 163, 167)


def _powers_of_65537(p: int) -> frozenset[int]:
    seen, value = set(), 1
    while value not in seen:
        seen.add(value)
        value = value * 65537 % p
    return frozenset(seen)


_ROCA_SUBGROUPS: Final = {p: _powers_of_65537(p) for p in _ROCA_PRIMES}


def has_roca_fingerprint(n: int) -> bool:
    return all(n % p in group for p, group in _ROCA_SUBGROUPS.items())


def build_keyset(
    jwks: Iterable[Mapping[str, Any]], allowed: Iterable[str], *, allow_symmetric: bool
) -> KeySet:
    """Loads each usable key; a kid that appears twice is ambiguous and dropped entirely."""
    allowed = tuple(allowed)
    jwks = list(jwks)
    loaded: list[TrustedKey] = []
    rejected: list[str] = []
    kinds = {jwk.get("kty") for jwk in jwks if isinstance(jwk, Mapping)}
    if "oct" in kinds and len(kinds) > 1:
        # A set mixing MAC secrets and public keys is how a public key ends up used as an
        # HMAC secret (Wycheproof MixedKeySet): the symmetric keys are not trusted.
        allow_symmetric = False
    # A kid that appears twice in the document is ambiguous, even if one copy is unusable.
    counts: dict[str, int] = {}
    for jwk in jwks:
        kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
        if isinstance(kid, str):
            counts[kid] = counts.get(kid, 0) + 1
    for index, jwk in enumerate(jwks):
        if index >= MAX_KEYS:
            rejected.append("too many keys")
            break
        if not isinstance(jwk, Mapping):
            rejected.append("not an object")
            continue
        try:
            loaded.append(parse_jwk(jwk, allowed, allow_symmetric=allow_symmetric))
        except JwkError as error:
            rejected.append(str(error))
    keys = tuple(k for k in loaded if k.kid is None or counts[k.kid] == 1)
    rejected.extend("duplicate kid" for k in loaded if k.kid is not None and counts[k.kid] > 1)
    return KeySet(keys, tuple(rejected))


def parse_jwks_document(body: bytes) -> list[Mapping[str, Any]]:
    """A JWKS (RFC 7517 §5) fetched from an issuer: {"keys": [...]}; JwkError otherwise."""
    try:
        text = body.decode("utf-8")
        # Before json.loads: 64 KB of brackets would overflow the stack of a Pyodide isolate.
        check_nesting(text, MAX_JSON_DEPTH)
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JwkError("key set is not JSON") from None
    except ProblemError:
        raise JwkError("key set nests too deeply") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwkError("key set has no keys array")
    return [key for key in keys if isinstance(key, dict)]


def ed25519_thumbprint(public_key: bytes) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key: the gate's `kid`."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(public_key)},
        separators=(",", ":"), sort_keys=True,
    )
    return b64url_encode(hashlib.sha256(canonical.encode()).digest())
