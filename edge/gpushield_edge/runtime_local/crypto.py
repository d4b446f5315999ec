"""The Crypto port on CPython: hashlib for digests, `cryptography` for AEAD and Ed25519.

Key secrets are sealed with AES-256-GCM under the key-encryption key (KEK); the key id is the
associated data, so a sealed secret copied onto another key's row does not open.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gpushield_wire.digest import SUPPORTED_ALGORITHMS

from . import _jose

_NONCE_BYTES = 12


class LocalCrypto:
    def __init__(self, key_encryption_key: bytes) -> None:
        if len(key_encryption_key) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(key_encryption_key)

    def __repr__(self) -> str:
        return "LocalCrypto(kek=<hidden>)"

    async def digest(self, algorithm: str, data: bytes) -> bytes:
        return hashlib.new(SUPPORTED_ALGORITHMS[algorithm], data).digest()

    async def ed25519_verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    async def ed25519_public_key(self, seed: bytes) -> bytes:
        return _jose.ed25519_public_key(seed)

    async def ed25519_sign(self, seed: bytes, data: bytes) -> bytes:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return Ed25519PrivateKey.from_private_bytes(seed).sign(data)

    async def jws_verify(
        self, alg: str, jwk: Mapping[str, str], data: bytes, signature: bytes
    ) -> bool:
        return _jose.verify(alg, jwk, data, signature)

    async def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    async def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise ValueError("sealed key material does not open under this KEK") from None
