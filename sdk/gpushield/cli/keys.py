"""`gpushield keys …`: create, list, show, rotate, revoke, quarantine and restore API keys.

By default the commands work on the local gate's store (`.gpushield/`). With `--gate URL`
(or GPUSHIELD_GATE_URL) they go to a running gate's signed admin API instead — a deployed
Worker or another machine's `gpushield dev` — using the admin credential in
GPUSHIELD_ADMIN_SECRET. Both paths go through the same `KeyAdmin` interface.

A new key's secret is printed exactly once; the store keeps it sealed under the gate's
key-encryption key (HMAC verification needs the secret itself, so a hash would not do).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import typer
from rich.table import Table

from gpushield_edge.admin.audited import AuditedKeyAdmin
from gpushield_edge.admin.service import KeyAdmin, KeyAdminError, LocalKeyAdmin, NewKey
from gpushield_edge.keyguard import KeyLimits, KeyRecord
from gpushield_edge.keyguard.budget import BudgetSpec
from gpushield_edge.keyguard.guard import KeyGuardCore
from gpushield_edge.keyguard.records import KeyStatus
from gpushield_edge.runtime_local.app import ADMIN_SECRET_ENV, open_key_guard
from gpushield_edge.runtime_local.audit import JsonLinesAuditSink
from gpushield_edge.runtime_local.clock import SystemClock
from gpushield_edge.runtime_local.state import StateDir

from ._common import STATE_DIR_OPTION, console, fail, one_line_errors

app = typer.Typer(no_args_is_help=True,
                  help="Create, list, show, rotate, revoke, quarantine and restore API keys "
                       "(local or remote gate).")

T = TypeVar("T")

GATE_OPTION = typer.Option(
    None, "--gate", envvar="GPUSHIELD_GATE_URL",
    help="Manage the keys of the gate at this URL (its admin API) instead of the local store.",
)


def run_admin(
    state_dir: Path, gate: str | None, work: Callable[[KeyAdmin], Awaitable[T]],
    core: KeyGuardCore | None = None,
) -> T:
    """Runs `work` against the local store (through `core` when the caller has it open) or,
    with --gate, the remote admin API."""

    async def main() -> T:
        if gate is None:
            state = StateDir(state_dir)
            clock = SystemClock()
            audit = JsonLinesAuditSink(state.ensure().audit_log)
            try:
                return await work(AuditedKeyAdmin(
                    LocalKeyAdmin(core or open_key_guard(state), clock), audit, clock))
            finally:
                audit.close()
        secret = os.environ.get(ADMIN_SECRET_ENV)
        if not secret:
            raise KeyAdminError(f"--gate needs the admin credential in {ADMIN_SECRET_ENV}")
        from ..admin import AdminClient

        async with AdminClient(gate, secret) as client:
            return await work(client)

    return asyncio.run(main())

_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90d', '12h', '30m', '45s' → seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"duration must look like 90d, 12h, 30m or 45s (got {text!r})")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def parse_budget(text: str) -> BudgetSpec:
    """'day:gpu=600,money=12.5,tz=Europe/Paris' → a budget: GPU seconds and/or money (in
    currency units, stored as micro-units) per hour/day/month; `rolling` for a sliding window,
    `model=NAME` for a per-model budget, `id=NAME` to name it."""
    unit, _, rest = text.strip().partition(":")
    document: dict[str, object] = {"unit": unit}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        name, _, value = item.partition("=")
        if name == "rolling" and not value:
            document["rolling"] = True
        elif name == "gpu":
            document["limit_gpu_ms"] = round(float(value.removesuffix("s")) * 1000)
        elif name == "money":
            document["limit_micros"] = round(float(value) * 1_000_000)
        elif name in ("tz", "model"):
            document[name] = value
        elif name == "id":
            document["budget_id"] = value
        else:
            raise ValueError(f"--budget: unknown part {name!r} (gpu, money, tz, model, id, "
                             "rolling)")
    return BudgetSpec.from_dict(document)


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
    token_ttl: str = typer.Option(
        "10m", help="Lifetime of the access tokens this key gets at /oauth/token (≤ 15m)."),
    budget: list[str] = typer.Option(
        [], "--budget", help="Budget per period (repeat), e.g. 'day:gpu=600,money=12.5' or "
        "'month:money=200,tz=Europe/Paris' or 'hour:gpu=60,rolling'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)."),
    state_dir: Path = STATE_DIR_OPTION,
    gate: str | None = GATE_OPTION,
) -> None:
    """Create a key. Its secret is shown once: store it now."""
    if not model:
        raise fail("name at least one --model (or --model '*' for every model)")
    if rate <= 0 or burst < 1 or concurrency < 1 or max_call_seconds <= 0:
        raise fail("rate, burst, concurrency and max-call-seconds must be positive")
    expires_at = None if expires_in == "never" else time.time() + parse_duration(expires_in)
    token_ttl_s = int(parse_duration(token_ttl))
    if not 60 <= token_ttl_s <= 900:
        raise fail("token-ttl must be between 1m and 15m")
    spec = NewKey(
        scopes=tuple(model),
        limits=KeyLimits(rate_per_minute=rate, burst=burst, max_concurrency=concurrency,
                         max_call_gpu_ms=int(max_call_seconds * 1000),
                         token_ttl_s=token_ttl_s),
        expires_at=expires_at,
        label=label,
        budgets=tuple(parse_budget(text) for text in budget),
    )
    created = run_admin(state_dir, gate, lambda admin: admin.create(spec))
    record = created.record
    if as_json:
        print(json.dumps({**record.to_dict(), "secret": created.secret}))
        return
    console.print(_table([record]))
    console.print("\n[bold]Secret (shown once, store it now):[/]")
    console.print(f"  export GPUSHIELD_KEY_ID={record.key_id}", highlight=False)
    console.print(f"  export GPUSHIELD_SECRET={created.secret}", highlight=False)


@app.command("list")
@one_line_errors
def list_keys(
    as_json: bool = typer.Option(False, "--json"),
    state_dir: Path = STATE_DIR_OPTION,
    gate: str | None = GATE_OPTION,
) -> None:
    """List keys with their status, scopes and limits (never secrets)."""
    records = run_admin(state_dir, gate, lambda admin: admin.list())
    if as_json:
        print(json.dumps([record.to_dict() for record in records]))
        return
    console.print(_table(records))


@app.command()
@one_line_errors
def show(
    key_id: str,
    as_json: bool = typer.Option(False, "--json"),
    state_dir: Path = STATE_DIR_OPTION,
    gate: str | None = GATE_OPTION,
) -> None:
    """Show one key (never its secret)."""
    view = run_admin(state_dir, gate, lambda admin: admin.get(key_id))
    if as_json:
        print(json.dumps({**view.record.to_dict(), "in_flight": view.in_flight}))
        return
    console.print(_table([view.record]))


def _set_status(key_id: str, status: KeyStatus, state_dir: Path, gate: str | None) -> KeyRecord:
    return run_admin(state_dir, gate, lambda admin: admin.set_status(key_id, status))


@app.command()
@one_line_errors
def revoke(
    key_id: str, state_dir: Path = STATE_DIR_OPTION, gate: str | None = GATE_OPTION
) -> None:
    """Revoke a key: its very next request is refused."""
    record = _set_status(key_id, "revoked", state_dir, gate)
    console.print(f"revoked {record.key_id} (version {record.version})")


@app.command()
@one_line_errors
def quarantine(
    key_id: str, state_dir: Path = STATE_DIR_OPTION, gate: str | None = GATE_OPTION
) -> None:
    """Quarantine a key: refused (403) until an administrator restores it."""
    record = _set_status(key_id, "quarantined", state_dir, gate)
    console.print(f"quarantined {record.key_id} (version {record.version})")


@app.command()
@one_line_errors
def rotate(
    key_id: str,
    grace: str = typer.Option(
        "1h", help="How long the old secret keeps working (e.g. 1h, 30m; 0s: stop at once)."),
    as_json: bool = typer.Option(False, "--json"),
    state_dir: Path = STATE_DIR_OPTION,
    gate: str | None = GATE_OPTION,
) -> None:
    """Give a key a new secret (shown once). The old one works until the grace ends; every
    token issued before the rotation is refused from the next request on."""
    grace_s = parse_duration(grace)
    rotated = run_admin(state_dir, gate, lambda admin: admin.rotate(key_id, grace_s))
    record = rotated.record
    if as_json:
        print(json.dumps({**record.to_dict(), "secret": rotated.secret,
                          "previous_valid_until": rotated.previous_valid_until}))
        return
    until = rotated.previous_valid_until
    ends = _when(until) if until is not None else "now (no grace)"
    console.print(f"rotated {record.key_id} (version {record.version}); the old secret works "
                  f"until {ends}")
    console.print("\n[bold]New secret (shown once, store it now):[/]")
    console.print(f"  export GPUSHIELD_SECRET={rotated.secret}", highlight=False)


@app.command()
@one_line_errors
def restore(
    key_id: str, state_dir: Path = STATE_DIR_OPTION, gate: str | None = GATE_OPTION
) -> None:
    """Make a revoked or quarantined key active again."""
    record = _set_status(key_id, "active", state_dir, gate)
    console.print(f"restored {record.key_id} (version {record.version})")


@app.command("budget")
@one_line_errors
def set_budget(
    key_id: str,
    budget: list[str] = typer.Option(
        [], "--budget", help="The key's new budgets (repeat); same syntax as `keys create`."),
    clear: bool = typer.Option(False, "--clear", help="Remove every budget of the key."),
    state_dir: Path = STATE_DIR_OPTION,
    gate: str | None = GATE_OPTION,
) -> None:
    """Replace a key's budgets. Spend already counted in the current periods still counts."""
    if not budget and not clear:
        raise fail("give the new budgets with --budget (or --clear to remove them all)")
    specs = tuple(parse_budget(text) for text in budget)
    run_admin(state_dir, gate, lambda admin: admin.set_budgets(key_id, specs))
    console.print(f"{key_id}: {len(specs)} budget(s) set", highlight=False)
