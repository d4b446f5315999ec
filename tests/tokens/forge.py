"""Building tokens for tests, good and bad, with real keys (never a stubbed verifier)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gpushield_edge.runtime_local.app import LocalGate
from gpushield_edge.runtime_local.state import StateDir
from gpushield_edge.runtime_local.token_keys import token_signing_key_text
from gpushield_edge.tokens.issuer import parse_signing_keys


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(document: Any) -> str:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return b64(raw)


def gate_seed(state: StateDir) -> bytes:
    return parse_signing_keys(token_signing_key_text(state, {}))[0][0]


def gate_claims(local: LocalGate, key_id: str, version: int = 1, **changes: Any
                ) -> dict[str, Any]:
    now = int(time.time())
    tokens = local.gate.services.tokens
    assert tokens is not None
    claims: dict[str, Any] = {
        "iss": tokens.issuer.issuer, "aud": tokens.issuer.audience, "sub": key_id,
        "client_id": key_id, "iat": now, "nbf": now, "exp": now + 300, "jti": "t",
        "scope": "summarize", "gsv": version,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign_ed25519(seed: bytes, header: Any, claims: Any) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(signing_input.encode())
    return f"{signing_input}.{b64(signature)}"


def sign_hs256(secret: bytes, header: Any, claims: Any) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"
