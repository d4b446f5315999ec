"""RFC 9421 §3.3 algorithms: the allowlist, and every applicable RFC vector.

HMAC and Ed25519 go through `gpushield_wire.algorithms`; the RSA and ECDSA records (not in
the profile) are verified with `cryptography` directly over OUR signature base, which proves
the base builder on them too.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from corpora_path import corpora_dir
from gpushield_wire import structured_fields as sf
from gpushield_wire.algorithms import (
    ED25519,
    HMAC_SHA256,
    UnsupportedAlgorithm,
    sign,
    verify,
)
from gpushield_wire.signature_base import signature_base

B25 = "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8="
B26 = "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="

# keyid → algorithm (RFC 9421 Appendix B.1: the key determines it unless `alg` is given).
KEY_ALGORITHMS = {
    "test-key-rsa": "rsa-v1_5-sha256",
    "test-key-rsa-pss": "rsa-pss-sha512",
    "test-key-ecc-p256": "ecdsa-p256-sha256",
    "test-key-ed25519": ED25519,
    "test-shared-secret": HMAC_SHA256,
}


def _our_base(record: Any) -> bytes:
    member = sf.parse_dictionary(f"{record.label}={record.signature_input}")[record.label]
    assert isinstance(member, sf.InnerList)
    return signature_base(record.message, member.items, sf.serialize_inner_list(member))


def _verify_other(alg: str, keyid: str, base: bytes, signature: bytes, rfc_keys: Any) -> bool:
    public = rfc_keys["public"](keyid)
    try:
        if alg == "rsa-pss-sha512":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
            public.verify(signature, base, pss, hashes.SHA512())
        elif alg == "rsa-v1_5-sha256":
            public.verify(signature, base, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ecdsa-p256-sha256":
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32]), int.from_bytes(signature[32:])
            public.verify(encode_dss_signature(r, s), base, ec.ECDSA(hashes.SHA256()))
        else:
            raise AssertionError(alg)
    except InvalidSignature:
        return False
    return True


def _flip(data: bytes, index: int = 0) -> bytes:
    flipped = bytearray(data)
    flipped[index] ^= 0x01
    return bytes(flipped)


@pytest.mark.corpus
def test_every_vector_verifies_over_our_base(
    rfc9421_record: Any,
    crypto: Any,
    rfc_keys: Any,
    shared_secret: bytes,
    ed25519_keys: tuple[bytes, bytes],
) -> None:
    corpora_dir()
    record = rfc9421_record
    if record.message is None or record.raw["signature"] is None:
        pytest.skip("record has no signature value (illustrative Signature-Input only)")
    alg = record.raw.get("alg_param") or KEY_ALGORITHMS[record.keyid]
    base = _our_base(record)
    signature = record.signature

    def check(data: bytes, sig: bytes) -> bool:
        if alg == HMAC_SHA256:
            return verify(alg, shared_secret, data, sig)
        if alg == ED25519:
            return verify(alg, ed25519_keys[1], data, sig, crypto)
        return _verify_other(alg, record.keyid, data, sig, rfc_keys)

    # B.4: exactly the transformations the RFC says break the signature do break it.
    assert check(base, signature) is record.base_matches
    if record.base_matches:
        assert not check(base, _flip(signature))
        assert not check(base, _flip(signature, len(signature) - 1))
        assert not check(_flip(base, len(base) // 2), signature)


@pytest.mark.corpus
def test_b25_hmac_reproduces_the_rfc(shared_secret: bytes) -> None:
    base = (
        b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n"@authority": example.com\n'
        b'"content-type": application/json\n"@signature-params": ("date" "@authority" '
        b'"content-type");created=1618884473;keyid="test-shared-secret"'
    )
    assert base64.b64encode(sign(HMAC_SHA256, shared_secret, base)).decode() == B25


@pytest.mark.corpus
def test_b26_ed25519_reproduces_the_rfc(crypto: Any, ed25519_keys: tuple[bytes, bytes]) -> None:
    base = (
        b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n"@method": POST\n"@path": /foo\n'
        b'"@authority": example.com\n"content-type": application/json\n"content-length": 18\n'
        b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
        b'"content-length");created=1618884473;keyid="test-key-ed25519"'
    )
    seed, public = ed25519_keys
    signature = sign(ED25519, seed, base, crypto)
    assert base64.b64encode(signature).decode() == B26
    assert verify(ED25519, public, base, signature, crypto)


@pytest.mark.parametrize(
    "alg",
    [
        "rsa-pss-sha512",
        "rsa-v1_5-sha256",
        "ecdsa-p256-sha256",
        "ecdsa-p384-sha384",
        "HMAC-SHA256",
        "none",
        "",
    ],
)
def test_only_the_allowlist(alg: str) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        sign(alg, b"k" * 32, b"data")
    with pytest.raises(UnsupportedAlgorithm):
        verify(alg, b"k" * 32, b"data", b"sig")


def test_ed25519_needs_a_port() -> None:
    with pytest.raises(RuntimeError, match="CryptoPort"):
        sign(ED25519, b"s" * 32, b"data")
    with pytest.raises(RuntimeError, match="CryptoPort"):
        verify(ED25519, b"p" * 32, b"data", b"x" * 64)


def test_ed25519_bad_lengths_are_invalid_not_errors(crypto: Any) -> None:
    assert verify(ED25519, b"p" * 31, b"data", b"x" * 64, crypto) is False
    assert verify(ED25519, b"p" * 32, b"data", b"x" * 63, crypto) is False
    with pytest.raises(ValueError, match="seed"):
        sign(ED25519, b"s" * 64, b"data", crypto)


def test_hmac_round_trip_and_wrong_key() -> None:
    signature = sign(HMAC_SHA256, b"key", b"data")
    assert verify(HMAC_SHA256, b"key", b"data", signature)
    assert not verify(HMAC_SHA256, b"other", b"data", signature)
    assert not verify(HMAC_SHA256, b"key", b"data", signature[:-1])
