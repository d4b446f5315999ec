"""`gpushield keys …`: create, list, show and revoke API keys in the local gate's store.

A new key's secret is printed exactly once; the store keeps it sealed under the gate's
key-encryption key (HMAC verification needs the secret itself, so a hash would not do).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from gpushield_edge.keyguard import KeyLimits, KeyRecord
from gpushield_edge.runtime_local.app import open_key_guard
from gpushield_edge.runtime_local.state import StateDir
from gpushield_wire import algorithms, credentials

from ._common import STATE_DIR_OPTION, console, fail, one_line_errors

app = typer.Typer(no_args_is_help=True, help="Create, list, show and revoke API keys.")

_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90d', '12h', '30m', '45s' → seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"duration must look like 90d, 12h, 30m or 45s (got {text!r})")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _row(record: KeyRecord) -> list[str]:
    limits = record.limits
    return [
        record.key_id,
        record.label or "-",
        record.status,
        ", ".join(record.scopes),
        f"{limits.rate_per_minute:g}/min (burst {limits.burst})",
        str(limits.max_concurrency),
        f"{limits.max_call_gpu_ms / 1000:g} s",
        _when(record.expires_at),
        _when(record.last_used_at),
        str(record.admitted_count),
    ]


def _table(records: list[KeyRecord]) -> Table:
    table = Table(title="gpushield keys")
    for column in ("key id", "label", "status", "models", "rate", "in flight",
                   "GPU/call", "expires", "last used", "admitted"):
        table.add_column(column)
    for record in records:
        style = None if record.status == "active" else "dim"
        table.add_row(*_row(record), style=style)
    return table


@app.command()
@one_line_errors
def create(
    model: list[str] = typer.Option(
        [], "--model", "-m", help="Model this key may call (repeat). Use '*' for all."),
    rate: float = typer.Option(60.0, help="Requests per minute (token bucket refill)."),
    burst: int = typer.Option(10, help="Requests allowed back to back."),
    concurrency: int = typer.Option(4, help="Requests in flight at once."),
    max_call_seconds: float = typer.Option(60.0, help="GPU seconds one call may use."),
    expires_in: str = typer.Option("90d", help="Lifetime, e.g. 90d, 12h; 'never' for none."),
    label: str = typer.Option("", help="A note for humans (who holds this key)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)."),
    state_dir: Path = STATE_DIR_OPTION,
) -> None:
    """Create a key. Its secret is shown once: store it now."""
    if not model:
        raise fail("name at least one --model (or --model '*' for every model)")
    if rate <= 0 or burst < 1 or concurrency < 1 or max_call_seconds <= 0:
        raise fail("rate, burst, concurrency and max-call-seconds must be positive")
    now = time.time()
    expires_at = None if expires_in == "never" else now + parse_duration(expires_in)
    secret = credentials.new_secret()
    core = open_key_guard(StateDir(state_dir))
    record = core.create_key(
        key_id=credentials.new_key_id(),
        alg=algorithms.HMAC_SHA256,
        key_material=secret,
        scopes=tuple(model),
        limits=KeyLimits(rate_per_minute=rate, burst=burst, max_concurrency=concurrency,
                         max_call_gpu_ms=int(max_call_seconds * 1000)),
        expires_at=expires_at,
        now=now,
        label=label,
    )
    secret_text = credentials.format_secret(secret)
    if as_json:
        print(json.dumps({**record.to_dict(), "secret": secret_text}))
        return
    console.print(_table([record]))
    console.print("\n[bold]Secret (shown once, store it now):[/]")
    console.print(f"  export GPUSHIELD_KEY_ID={record.key_id}", highlight=False)
    console.print(f"  export GPUSHIELD_SECRET={secret_text}", highlight=False)


@app.command("list")
@one_line_errors
def list_keys(state_dir: Path = STATE_DIR_OPTION) -> None:
    """List keys with their status, scopes and limits (never secrets)."""
    console.print(_table(open_key_guard(StateDir(state_dir)).list_keys()))


@app.command()
@one_line_errors
def show(
    key_id: str,
    as_json: bool = typer.Option(False, "--json"),
    state_dir: Path = STATE_DIR_OPTION,
) -> None:
    """Show one key (never its secret)."""
    core = open_key_guard(StateDir(state_dir))
    record = core.get_key(key_id)
    if as_json:
        print(json.dumps({**record.to_dict(), "in_flight": core.in_flight(key_id, time.time())}))
        return
    console.print(_table([record]))


@app.command()
@one_line_errors
def revoke(key_id: str, state_dir: Path = STATE_DIR_OPTION) -> None:
    """Revoke a key: its very next request is refused."""
    record = open_key_guard(StateDir(state_dir)).set_status(key_id, "revoked")
    console.print(f"revoked {record.key_id} (version {record.version})")
