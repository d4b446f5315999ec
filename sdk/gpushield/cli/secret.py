"""`gpushield secret …`: fresh values for the gate's deployment secrets.

Pipe them straight into `wrangler secret put` so they never land in a file or shell history:

    gpushield secret kek | npx wrangler secret put GPUSHIELD_KEK
    gpushield secret admin | npx wrangler secret put GPUSHIELD_ADMIN_SECRET
    gpushield secret token-key | npx wrangler secret put GPUSHIELD_TOKEN_SIGNING_KEY
"""

from __future__ import annotations

import secrets

import typer

from gpushield_edge.tokens.jws import b64url_encode
from gpushield_wire import credentials

app = typer.Typer(no_args_is_help=True,
                  help="Print new deployment secrets (KEK, admin, token signing key).")


@app.command()
def kek() -> None:
    """A key-encryption key (base64url, 32 bytes) for GPUSHIELD_KEK."""
    key = secrets.token_bytes(credentials.KEK_BYTES)
    print(b64url_encode(key))


@app.command()
def admin() -> None:
    """An admin credential (gss_…) for GPUSHIELD_ADMIN_SECRET; `gpushield keys --gate URL`
    signs with it."""
    print(credentials.format_secret(credentials.new_secret()))


@app.command("token-key")
def token_key() -> None:
    """An Ed25519 seed (gts_…) for GPUSHIELD_TOKEN_SIGNING_KEY: signs the gate's access
    tokens. To rotate, prepend a new one and keep the old as `gts_OLD@<unix end>`."""
    from gpushield_edge.tokens.issuer import new_signing_key_text

    print(new_signing_key_text())
