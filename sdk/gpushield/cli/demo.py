"""`gpushield demo`: the whole secured path, live, in one command.

Starts a real RunPod worker (the `runpod` package's own server running the example handler),
starts the local gate in front of it, creates keys, and shows as a table what happens to a
valid call and to each kind of forged, replayed or abusive call — with the worker's own count
of how many jobs it ran for each row.
"""

from __future__ import annotations

import asyncio
import copy
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table

from gpushield.devtools.gate_server import serve_gate
from gpushield.devtools.runpod_worker import start_runpod_worker
from gpushield.devtools.scenarios import Keys, Row, ScenarioEnv, run_scenarios
from gpushield_edge.admin.service import KeyAdmin, LocalKeyAdmin, NewKey
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.keyguard.budget import BudgetSpec
from gpushield_edge.runtime_local.app import load_config_document
from gpushield_edge.runtime_local.clock import SystemClock

from ._common import console, one_line_errors

MODEL = "summarize"
OTHER_MODEL = "caption"
RATE_BURST = 3


# The demo's price: 1 micro-unit per GPU-second, at least DEMO_MIN_MICROS a call.
DEMO_MIN_MICROS = 1000


def demo_config(worker_url: str) -> dict[str, object]:
    """The embedded defaults, pointed at the demo's worker, plus a second model that the
    demo key is not allowed to call, and a price so that budgets mean something."""
    document = load_config_document(None)
    models = document["models"]
    models[MODEL]["backend"]["base_url"] = worker_url
    models[OTHER_MODEL] = copy.deepcopy(models[MODEL])
    document["prices"] = {"backends": {"runpod": {"micros_per_gpu_s": 1,
                                                  "min_micros": DEMO_MIN_MICROS}}}
    return document


async def _new_key(admin: KeyAdmin, label: str, limits: KeyLimits,
                   budgets: tuple[BudgetSpec, ...] = ()) -> tuple[str, str]:
    created = await admin.create(NewKey(scopes=(MODEL,), limits=limits, budgets=budgets,
                                        expires_at=time.time() + 3600, label=label))
    return created.record.key_id, created.secret


async def create_demo_keys(admin: KeyAdmin) -> Keys:
    """The demo's keys, made through the admin interface: a local store or a remote gate."""
    roomy = KeyLimits(rate_per_minute=600, burst=50, max_concurrency=4, max_call_gpu_ms=30_000)
    main = await _new_key(admin, "demo app", roomy)
    revoked = await _new_key(admin, "leaked laptop", roomy)
    await admin.set_status(revoked[0], "revoked")
    tight = KeyLimits(rate_per_minute=1, burst=RATE_BURST, max_concurrency=4,
                      max_call_gpu_ms=30_000)
    rate_limited = await _new_key(admin, "batch script", tight)
    # Half the price of one call a day: even the first call's worst case does not fit.
    broke = await _new_key(admin, "intern's notebook", roomy, budgets=(
        BudgetSpec("day", "day", limit_micros=DEMO_MIN_MICROS // 2),))
    return Keys(main=main, revoked=revoked, rate_limited=rate_limited, rate_burst=RATE_BURST,
                over_budget=broke)


def _table(rows: list[Row]) -> Table:
    table = Table(title="gpushield demo: SDK → gate → RunPod worker", title_justify="left")
    table.add_column("what was sent")
    table.add_column("HTTP status")
    table.add_column("code")
    table.add_column("backend ran", justify="right")
    table.add_column("as expected", justify="center")
    for row in rows:
        ran = "no" if row.runs == 0 else ("yes" if row.runs == 1 else f"yes ×{row.runs}")
        table.add_row(row.name, row.outcome.status, row.outcome.code, ran,
                      "[green]✓[/]" if row.ok else f"[red]✗ expected {row.expected}[/]")
    return table


@one_line_errors
def run(
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help="Keep the demo's keys and audit log here (default: a temp dir)."),
) -> None:
    """Run the end-to-end demo and print what the gate did with each call."""
    root = state_dir or Path(tempfile.mkdtemp(prefix="gpushield-demo-"))
    rows: list[Row] = []
    with ExitStack() as stack:
        with console.status("Starting a RunPod worker (runpod's own --rp_serve_api server)…"):
            worker = stack.enter_context(start_runpod_worker(root / "worker", hooks=False))
        console.print(f"RunPod worker ready at {worker.url} ({worker.startup_s:.1f} s)")
        gate = stack.enter_context(serve_gate(demo_config(worker.url), root / "gate"))
        console.print(f"gate listening at {gate.url} (state in {root / 'gate'})")
        admin = LocalKeyAdmin(gate.local.core, SystemClock())
        keys = asyncio.run(create_demo_keys(admin))
        env = ScenarioEnv(gate.url, MODEL, OTHER_MODEL, keys, worker.run_count)
        stack.callback(env.http.close)
        with Live(_table(rows), console=console, refresh_per_second=8) as live:

            def show(row: Row) -> None:
                rows.append(row)
                live.update(_table(rows))

            run_scenarios(env, on_row=show)
    audit_lines = gate.state.audit_log.read_text(encoding="utf-8").splitlines()
    failures = [row for row in rows if not row.ok]
    console.print(f"\nAudit log: {len(audit_lines)} events in {gate.state.audit_log}; the last:")
    if audit_lines:
        console.print_json(json.dumps(json.loads(audit_lines[-1])))
    if failures:
        console.print(f"[bold red]{len(failures)} of {len(rows)} rows were not as expected[/]")
        raise typer.Exit(1)
    console.print(f"[bold green]All {len(rows)} rows as expected.[/] Forged, replayed and "
                  "abusive calls were refused before any GPU work.")
