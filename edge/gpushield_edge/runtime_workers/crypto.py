"""The Crypto port on WebCrypto (`crypto.subtle`).

Digests of small bodies stay in Python (hashlib's HACL* code in WebAssembly): below a few KiB
the cost of crossing into JS and back is larger than the hashing. Large bodies, Ed25519 and
AES-GCM go to WebCrypto, which runs natively outside the interpreter. Sealed secrets use the
same layout as the local runtime (12-byte nonce, then ciphertext and tag), so a key store
exported from one runtime opens in the other under the same key-encryption key.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import js  # type: ignore[import-not-found]

from gpushield_wire.digest import SUPPORTED_ALGORITHMS

from .jsbridge import buffer_bytes, js_list, js_object, js_value

# Below this many bytes, hashing in Python is cheaper than a round trip through WebCrypto.
NATIVE_DIGEST_MIN_BYTES = 8 * 1024
_WEB_DIGEST = {"sha-256": "SHA-256", "sha-512": "SHA-512"}
_NONCE_BYTES = 12


class WebCrypto:
    def __init__(self, key_encryption_key: bytes | None = None) -> None:
        # The gate itself never seals or opens: only key guards get the KEK.
        if key_encryption_key is not None and len(key_encryption_key) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._kek_raw = key_encryption_key
        self._kek: Any = None
        self._ed25519_keys: dict[bytes, Any] = {}

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

