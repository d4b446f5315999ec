"""HMAC shared secrets the gate refuses to trust: too short, or publicly known.

An HS256 issuer is only as strong as its secret, and wallarm/jwt-secrets lists 103,979 secrets
found in real deployments and tutorials — what an attacker tries first. The gate refuses to
start with a configured secret that is shorter than 32 bytes (RFC 7518 §3.2: at least the hash
size) or whose SHA-256 prefix is in `weak_hmac_secrets.txt`, derived from that list by
`scripts/derive_weak_secrets.py` (only entries of 32+ bytes need listing; see there).
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

MIN_SECRET_BYTES = 32
_PREFIX_HEX = 16


@functools.cache
def _known_prefixes() -> frozenset[str]:
    text = resources.files(__package__).joinpath("weak_hmac_secrets.txt").read_text("ascii")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def is_known_weak(secret: bytes) -> bool:
    return hashlib.sha256(secret).hexdigest()[:_PREFIX_HEX] in _known_prefixes()


def check_shared_secret(secret: bytes, name: str) -> None:
    """Raises ValueError (naming the setting, never the secret) for a secret we refuse."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"{name}: an HS256 secret needs at least {MIN_SECRET_BYTES} bytes")
    if is_known_weak(secret):
        raise ValueError(f"{name}: this HS256 secret is on the public list of known JWT "
                         "secrets (wallarm/jwt-secrets); generate a random one")
