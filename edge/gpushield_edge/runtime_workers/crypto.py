"""The Crypto port on WebCrypto (`crypto.subtle`).

Digests of small bodies stay in Python (hashlib's HACL* code in WebAssembly): below a few KiB
the cost of crossing into JS and back is larger than the hashing. Large bodies, Ed25519 and
AES-GCM go to WebCrypto, which runs natively outside the interpreter. Sealed secrets use the
same layout as the local runtime (12-byte nonce, then ciphertext and tag), so a key store
exported from one runtime opens in the other under the same key-encryption key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from typing import Any

import js  # type: ignore[import-not-found]

from gpushield_wire.digest import SUPPORTED_ALGORITHMS

from .jsbridge import buffer_bytes, js_list, js_object, js_value

# Below this many bytes, hashing in Python is cheaper than a round trip through WebCrypto.
NATIVE_DIGEST_MIN_BYTES = 8 * 1024
_WEB_DIGEST = {"sha-256": "SHA-256", "sha-512": "SHA-512"}
_NONCE_BYTES = 12
# Imported public keys kept per isolate (trusted issuers' keys: a handful in practice).
_KEY_CACHE_SIZE = 256
_PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "n", "e")
_HASH_OF = {"256": "SHA-256", "384": "SHA-384", "512": "SHA-512"}
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def _jws_params(
    alg: str, jwk: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(importKey parameters, verify parameters) for a JWS `alg`, or None if unsupported."""
    kty, bits = jwk.get("kty"), alg[2:]
    if alg == "EdDSA" and kty == "OKP" and jwk.get("crv") == "Ed25519":
        return {"name": "Ed25519"}, {"name": "Ed25519"}
    if alg[:2] == "RS" and kty == "RSA" and bits in _HASH_OF:
        params = {"name": "RSASSA-PKCS1-v1_5", "hash": _HASH_OF[bits]}
        return params, params
    if alg[:2] == "PS" and kty == "RSA" and bits in _HASH_OF:
        return ({"name": "RSA-PSS", "hash": _HASH_OF[bits]},
                {"name": "RSA-PSS", "saltLength": int(bits) // 8})
    if alg in _EC_CURVES and kty == "EC" and jwk.get("crv") == _EC_CURVES[alg]:
        return ({"name": "ECDSA", "namedCurve": _EC_CURVES[alg]},
                {"name": "ECDSA", "hash": _HASH_OF[bits]})
    return None


class WebCrypto:
    def __init__(self, key_encryption_key: bytes | None = None) -> None:
        # The gate itself never seals or opens: only key guards get the KEK.
        if key_encryption_key is not None and len(key_encryption_key) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._kek_raw = key_encryption_key
        self._kek: Any = None
        self._ed25519_keys: dict[bytes, Any] = {}
        self._ed25519_signers: dict[bytes, Any] = {}
        self._jws_keys: dict[tuple[object, ...], Any] = {}

    def __repr__(self) -> str:
        return "WebCrypto(kek=<hidden>)"

    async def digest(self, algorithm: str, data: bytes) -> bytes:
        if len(data) < NATIVE_DIGEST_MIN_BYTES:
            return hashlib.new(SUPPORTED_ALGORITHMS[algorithm], data).digest()
        return await buffer_bytes(js.crypto.subtle.digest(_WEB_DIGEST[algorithm], js_value(data)))

    async def ed25519_verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        subtle = js.crypto.subtle
        try:
            key = self._ed25519_keys.get(public_key)
            if key is None:
                key = await subtle.importKey(
                    "raw", js_value(public_key), js_object({"name": "Ed25519"}), False,
                    js_list(["verify"]))
                self._ed25519_keys[public_key] = key
            return bool(await subtle.verify(
                js_object({"name": "Ed25519"}), key, js_value(signature), js_value(data)))
        except Exception:
            return False

    async def _signing_key(self, seed: bytes) -> Any:
        """Imports an Ed25519 seed as PKCS#8 (RFC 8410: a fixed 16-byte prefix + the seed)."""
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        key = self._ed25519_signers.get(seed)
        if key is None:
            key = await js.crypto.subtle.importKey(
                "pkcs8", js_value(_PKCS8_ED25519_PREFIX + seed), js_object({"name": "Ed25519"}),
                True, js_list(["sign"]))
            self._ed25519_signers[seed] = key
        return key

    async def ed25519_public_key(self, seed: bytes) -> bytes:
        exported = await js.crypto.subtle.exportKey("jwk", await self._signing_key(seed))
        x = str(exported.x)
        return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))

    async def ed25519_sign(self, seed: bytes, data: bytes) -> bytes:
        return await buffer_bytes(js.crypto.subtle.sign(
            js_object({"name": "Ed25519"}), await self._signing_key(seed), js_value(data)))

    async def jws_verify(
        self, alg: str, jwk: Mapping[str, str], data: bytes, signature: bytes
    ) -> bool:
        """RFC 7518 algorithms on WebCrypto: RSASSA-PKCS1-v1_5, RSA-PSS (salt = hash
        length), ECDSA (WebCrypto takes the raw R||S form JWS uses) and Ed25519."""
        params = _jws_params(alg, jwk)
        if params is None:
            return False
        import_params, verify_params = params
        public = {name: str(jwk[name]) for name in _PUBLIC_MEMBERS if name in jwk}
        # Each await on a JS promise is a trip through the event loop, so imported keys are
        # kept: a token then costs one WebCrypto call, not two.
        cache_key = (alg, *sorted(public.items()))
        try:
            key = self._jws_keys.get(cache_key)
            if key is None:
                key = await js.crypto.subtle.importKey(
                    "jwk", js_object(public), js_object(import_params), False,
                    js_list(["verify"]))
                if len(self._jws_keys) >= _KEY_CACHE_SIZE:
                    self._jws_keys.pop(next(iter(self._jws_keys)))
                self._jws_keys[cache_key] = key
            return bool(await js.crypto.subtle.verify(
                js_object(verify_params), key, js_value(signature), js_value(data)))
        except Exception:
            return False

    async def _aes_key(self) -> Any:
        if self._kek_raw is None:
            raise ValueError("no key-encryption key here (GPUSHIELD_KEK is for key guards)")
        if self._kek is None:
            self._kek = await js.crypto.subtle.importKey(
                "raw", js_value(self._kek_raw), js_object({"name": "AES-GCM"}), False,
                js_list(["encrypt", "decrypt"]))
        return self._kek

    async def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        params = js_object({"name": "AES-GCM", "iv": js_value(nonce),
                            "additionalData": js_value(associated_data)})
        sealed = await buffer_bytes(
            js.crypto.subtle.encrypt(params, await self._aes_key(), js_value(plaintext)))
        return nonce + sealed

    async def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        params = js_object({"name": "AES-GCM", "iv": js_value(sealed[:_NONCE_BYTES]),
                            "additionalData": js_value(associated_data)})
        try:
            return await buffer_bytes(js.crypto.subtle.decrypt(
                params, await self._aes_key(), js_value(sealed[_NONCE_BYTES:])))
        except Exception:
            raise ValueError("sealed key material does not open under this KEK") from None

