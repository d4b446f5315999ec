"""JWS signature verification with `cryptography` (the local side of `Crypto.jws_verify`).

Keys arrive as public JWKs already validated by `tokens.jwk`; this module only turns them into
`cryptography` key objects and checks one signature. ECDSA signatures are the fixed-length
R||S of RFC 7518 §3.4: anything else (a DER blob, a padded value) is invalid, and R and S are
re-encoded as DER here only because that is what `cryptography` takes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_HASHES: Final[dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES: Final = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48),
                  "P-521": (ec.SECP521R1, 66)}
_EC_ALGS: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: str) -> int:
    return int.from_bytes(_b64(text), "big")


def ed25519_public_key(seed: bytes) -> bytes:
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify(alg: str, jwk: Mapping[str, str], data: bytes, signature: bytes) -> bool:
    try:
        return _verify(alg, jwk, data, signature)
    except (InvalidSignature, ValueError, KeyError, TypeError, UnsupportedAlgorithm):
        return False


def _verify(alg: str, jwk: Mapping[str, str], data: bytes, signature: bytes) -> bool:
    kty = jwk["kty"]
    if alg == "EdDSA" and kty == "OKP" and jwk["crv"] == "Ed25519":
        Ed25519PublicKey.from_public_bytes(_b64(jwk["x"])).verify(signature, data)
        return True
    if alg[:2] in ("RS", "PS") and kty == "RSA" and alg[2:] in _HASHES:
        key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
        if len(signature) != (key.key_size + 7) // 8:
            return False
        digest = _HASHES[alg[2:]]
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15() if alg[:2] == "RS"
            else padding.PSS(padding.MGF1(digest()), digest().digest_size)
        )
        key.verify(signature, data, pad, digest())
        return True
    if alg in _EC_ALGS and kty == "EC" and jwk["crv"] == _EC_ALGS[alg]:
        curve, size = _CURVES[jwk["crv"]]
        if len(signature) != 2 * size:
            return False
        public = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve()
                                               ).public_key()
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        public.verify(encode_dss_signature(r, s), data, ec.ECDSA(_HASHES[alg[2:]]()))
        return True
    return False
