"""Key ids and secrets as they appear on the wire and in a user's environment.

A key id is public (it travels in `keyid`); a secret is 256 random bits, shown once. Prefixes
make both recognisable to secret scanners and to humans reading a config file, and the
secret's text form is base64url so it survives shells and TOML unquoted.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

KEY_ID_PREFIX = "gsk_"
SECRET_PREFIX = "gss_"  # noqa: S105 - a public prefix, not a secret
SECRET_BYTES = 32
_KEY_ID_PATTERN = re.compile(r"gsk_[a-z2-7]{16}")
# The admin credential's key id: it signs the admin API's requests, and their nonces are kept
# under it in the key store. Not a gsk_ id, so no API key can ever have it.
ADMIN_KEY_ID = "gpushield-admin"


def new_key_id() -> str:
    return KEY_ID_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def is_key_id(value: str) -> bool:
    return _KEY_ID_PATTERN.fullmatch(value) is not None


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def format_secret(secret: bytes) -> str:
    return SECRET_PREFIX + base64.urlsafe_b64encode(secret).decode().rstrip("=")


def parse_secret(text: str) -> bytes:
    """Inverse of `format_secret`; raises ValueError without echoing the input."""
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"a gpushield secret starts with {SECRET_PREFIX!r}")
    body = text[len(SECRET_PREFIX):]
    try:
        secret = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("secret is not valid base64url") from None
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"secret must decode to {SECRET_BYTES} bytes")
    return secret


KEK_BYTES = 32


def parse_key_encryption_key(text: str, name: str = "GPUSHIELD_KEK") -> bytes:
    """The key-encryption key as deployments pass it: base64url of 32 random bytes
    (`gpushield secret kek` prints one). Errors name the variable, never its value."""
    try:
        kek = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not base64url") from None
    if len(kek) != KEK_BYTES:
        raise ValueError(f"{name} must decode to {KEK_BYTES} bytes")
    return kek
