"""`gpushield secret …`: fresh values for the gate's deployment secrets.

Pipe them straight into `wrangler secret put` so they never land in a file or shell history:

    gpushield secret kek | npx wrangler secret put GPUSHIELD_KEK
    gpushield secret admin | npx wrangler secret put GPUSHIELD_ADMIN_SECRET
"""

from __future__ import annotations

import base64
import secrets

import typer

from gpushield_wire import credentials

app = typer.Typer(no_args_is_help=True, help="Print new deployment secrets (KEK, admin).")


@app.command()
def kek() -> None:
    """A key-encryption key (base64url, 32 bytes) for GPUSHIELD_KEK."""
    key = secrets.token_bytes(credentials.KEK_BYTES)
    print(base64.urlsafe_b64encode(key).decode().rstrip("="))


@app.command()
def admin() -> None:
    """An admin credential (gss_…) for GPUSHIELD_ADMIN_SECRET; `gpushield keys --gate URL`
    signs with it."""
    print(credentials.format_secret(credentials.new_secret()))
