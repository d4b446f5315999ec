"""The Workers Crypto port (WebCrypto under Pyodide) against the CPython one, on the same
vectors: JWS signatures of every algorithm the gate accepts (valid and tampered), Ed25519
keys and signatures (RFC 8037), digests, and sealed key secrets in both directions — a store
sealed by one runtime must open in the other under the same key-encryption key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tests.support.workers_runtime import HARNESS, NODE_FLAGS, ROOT

from gpushield_edge.runtime_local.crypto import LocalCrypto

pytestmark = pytest.mark.slow
KEK = bytes(range(32))
MESSAGE = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJnc2tfdGVzdCJ9"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _int(value: int, size: int) -> str:
    return b64(value.to_bytes(size, "big"))


def jws_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = []
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = rsa_key.public_key().public_numbers()
    rsa_jwk = {"kty": "RSA", "n": _int(numbers.n, 256), "e": _int(numbers.e, 3)}
    for bits, digest in (("256", hashes.SHA256()), ("384", hashes.SHA384()),
                         ("512", hashes.SHA512())):
        vectors.append({"alg": f"RS{bits}", "jwk": rsa_jwk, "sig": b64(rsa_key.sign(
            MESSAGE, padding.PKCS1v15(), digest))})
        pss = padding.PSS(padding.MGF1(digest), digest.digest_size)
        vectors.append({"alg": f"PS{bits}", "jwk": rsa_jwk,
                        "sig": b64(rsa_key.sign(MESSAGE, pss, digest))})
    for alg, curve, size, digest in (("ES256", ec.SECP256R1(), 32, hashes.SHA256()),
                                     ("ES384", ec.SECP384R1(), 48, hashes.SHA384()),
                                     ("ES512", ec.SECP521R1(), 66, hashes.SHA512())):
        key = ec.generate_private_key(curve)
        point = key.public_key().public_numbers()
        r, s = decode_dss_signature(key.sign(MESSAGE, ec.ECDSA(digest)))
        vectors.append({"alg": alg, "jwk": {"kty": "EC", "crv": {32: "P-256", 48: "P-384",
                                                                  66: "P-521"}[size],
                                            "x": _int(point.x, size), "y": _int(point.y, size)},
                        "sig": b64(r.to_bytes(size, "big") + s.to_bytes(size, "big"))})
    ed = Ed25519PrivateKey.generate()
    vectors.append({"alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519",
                                            "x": b64(ed.public_key().public_bytes_raw())},
                    "sig": b64(ed.sign(MESSAGE))})
    tampered = []
    for vector in vectors:
        sig = bytearray(base64.urlsafe_b64decode(vector["sig"] + "=="))
        sig[len(sig) // 2] ^= 1
        tampered.append({**vector, "sig": b64(bytes(sig)), "tampered": True})
    # Confusions: a key of another type, an algorithm nobody allows.
    tampered.append({**vectors[0], "alg": "ES256", "tampered": True})
    tampered.append({**vectors[-1], "alg": "none", "tampered": True})
    return vectors + tampered


SCRIPT = '''
import asyncio, base64, json, hashlib
from gpushield_edge.runtime_workers.crypto import WebCrypto

V = json.loads(VECTORS)

def raw(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

async def main():
    crypto = WebCrypto(bytes(range(32)))
    jws = [await crypto.jws_verify(v["alg"], v["jwk"], V["message"].encode(), raw(v["sig"]))
           for v in V["jws"]]
    seed = raw(V["rfc8037"]["seed"])
    public = await crypto.ed25519_public_key(seed)
    signature = await crypto.ed25519_sign(seed, V["rfc8037"]["input"].encode())
    opened = await crypto.open(raw(V["sealed_by_cpython"]), b"gsk_roundtrip")
    try:
        await crypto.open(raw(V["sealed_by_cpython"]), b"gsk_otherkeyid")
        wrong_ad = "opened"
    except ValueError:
        wrong_ad = "refused"
    sealed = await crypto.seal(b"secret from the edge", b"gsk_edge")
    big = bytes(range(256)) * 200
    digests = [(await crypto.digest(name, data)).hex()
               for name in ("sha-256", "sha-512") for data in (b"small", big)]
    print(json.dumps({"jws": jws, "public": base64.urlsafe_b64encode(public).decode(),
                      "signature": base64.urlsafe_b64encode(signature).decode(),
                      "opened": opened.decode(), "wrong_ad": wrong_ad,
                      "sealed": base64.urlsafe_b64encode(sealed).decode(),
                      "digests": digests}))
'''


def test_webcrypto_port_agrees_with_the_cpython_port(
    worker_bundle: Path, tmp_path: Path
) -> None:
    local = LocalCrypto(KEK)
    vectors = {
        "message": MESSAGE.decode(),
        "jws": jws_vectors(),
        # RFC 8037 Appendix A.1 (key) and A.4 (signature of the JWS signing input).
        "rfc8037": {"seed": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
                    "input": "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"},
        "sealed_by_cpython": b64(asyncio.run(local.seal(b"secret from cpython",
                                                        b"gsk_roundtrip"))),
    }
    script = tmp_path / "webcrypto_check.py"
    script.write_text(f"VECTORS = {json.dumps(json.dumps(vectors))}\n{SCRIPT}", encoding="utf-8")
    done = subprocess.run(
        ["node", *NODE_FLAGS, str(HARNESS / "run_python.mjs"), "--bundle", str(worker_bundle),
         str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    expected = [not vector.get("tampered", False) for vector in vectors["jws"]]
    assert result["jws"] == expected
    assert result["public"].rstrip("=") == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert result["signature"].rstrip("=") == (
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
    assert result["opened"] == "secret from cpython"
    assert result["wrong_ad"] == "refused"
    sealed = base64.urlsafe_b64decode(result["sealed"])
    assert asyncio.run(local.open(sealed, b"gsk_edge")) == b"secret from the edge"
    big = bytes(range(256)) * 200
    assert result["digests"] == [
        hashlib.new(name, data).hexdigest()
        for name in ("sha256", "sha512") for data in (b"small", big)]
