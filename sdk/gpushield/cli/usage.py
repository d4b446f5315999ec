"""`gpushield usage`: what each key has spent, holds in flight, may do and has left.

Reads the local gate's store by default, or a running gate's admin API with `--gate URL`
(GPUSHIELD_ADMIN_SECRET), through the same `KeyAdmin` interface as `gpushield keys`.
`--plot FILE.png` draws cumulative spend over time per key (needs the `plot` extra:
`pip install 'gpushield[plot]'`).

Money is shown in currency units (the gate stores integer micro-units), GPU time in seconds.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from gpushield_edge.admin.service import KeyAdmin
from gpushield_edge.costs import account_budgets_from
from gpushield_edge.keyguard import KeyRecord
from gpushield_edge.keyguard.account import AccountGuardCore
from gpushield_edge.keyguard.budget import BudgetSpec
from gpushield_edge.keyguard.guard import KeyGuardCore
from gpushield_edge.runtime_local.app import open_key_guard
from gpushield_edge.runtime_local.state import StateDir

from ._common import STATE_DIR_OPTION, console, fail, one_line_errors
from .keys import GATE_OPTION, run_admin


def _money(micros: int | None) -> str:
    return "-" if micros is None else f"{micros / 1_000_000:,.4f}"


def _gpu_s(gpu_ms: int | None) -> str:
    return "-" if gpu_ms is None else f"{gpu_ms / 1000:,.1f} s"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%M")


def _limits(record: KeyRecord) -> str:
    limits = record.limits
    return (f"{limits.rate_per_minute:g}/min\nburst {limits.burst}\n"
            f"{limits.max_concurrency} at once\n{limits.max_call_gpu_ms / 1000:g}s/call")


def _budget_cells(budget: dict[str, Any]) -> list[str]:
    """budget, spent of limit, remaining, resets: GPU time and money on lines of their own."""
    kind = (f"{'rolling ' if budget['rolling'] else ''}{budget['unit']}"
            f"{' (account)' if budget['scope'] == 'account' else ''}")
    name = kind if budget["budget_id"] == kind else f"{budget['budget_id']}\n{kind}"
    spent, left = [], []
    for limit_key, committed_key, open_key, show in (
            ("limit_gpu_ms", "committed_gpu_ms", "open_gpu_ms", _gpu_s),
            ("limit_micros", "committed_micros", "open_micros", _money)):
        limit = budget.get(limit_key)
        if limit is None:
            continue
        settled = budget[committed_key] - budget[open_key]
        spent.append(f"{show(settled)} of {show(limit)}")
        left.append(show(max(0, limit - budget[committed_key])))
    resets = "rolling" if budget["rolling"] else _when(budget["resets_at"])
    return [name, "\n".join(spent), "\n".join(left), resets]


def usage_table(rows: list[tuple[KeyRecord, dict[str, Any]]]) -> Table:
    """One row per key and budget: who, limits, what is in flight, spent, left, reset."""
    table = Table(title="gpushield usage")
    table.add_column("key", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("limits", no_wrap=True)
    table.add_column("in\nflight", no_wrap=True)
    table.add_column("budget", no_wrap=True)
    table.add_column("spent", no_wrap=True)
    table.add_column("left", no_wrap=True)
    table.add_column("resets\n(UTC)", no_wrap=True)
    table.add_column("total", no_wrap=True)
    for record, usage in rows:
        open_rows = usage["open_reservations"]
        in_flight = (f"{len(open_rows)}\n{_gpu_s(sum(r['reserved_gpu_ms'] for r in open_rows))}"
                     f"\n{_money(sum(r['reserved_micros'] for r in open_rows))}"
                     if open_rows else "0")
        totals = usage["totals"]
        total_ms = sum(v["gpu_ms"] for k, v in totals.items() if k != "open")
        total_micros = sum(v["micros"] for k, v in totals.items() if k != "open")
        total = f"{_gpu_s(total_ms)}\n{_money(total_micros)}"
        budgets = usage["budgets"] or [None]
        style = None if record.status == "active" else "dim"
        for index, budget in enumerate(budgets):
            cells = _budget_cells(budget) if budget else ["no budget", "-", "-", "-"]
            if budget and budget["scope"] == "account":  # this key's share, bounded by chunk
                cells[1] = "\n".join(
                    f"{show(budget[c] - budget[o])} (chunk {show(budget[h])})"
                    for limit, c, o, h, show in (
                        ("limit_gpu_ms", "committed_gpu_ms", "open_gpu_ms", "chunk_gpu_ms",
                         _gpu_s),
                        ("limit_micros", "committed_micros", "open_micros", "chunk_micros",
                         _money))
                    if budget.get(limit) is not None)
                cells[2] = "see account"
            if index == 0:
                head = [f"{record.key_id}\n{record.label}", record.status, _limits(record),
                        in_flight]
            else:
                head = ["", "", "", ""]
            table.add_row(*head, *cells, total if index == 0 else "", style=style,
                          end_section=index == len(budgets) - 1)
    return table


def plot_spend(rows: list[tuple[KeyRecord, dict[str, Any]]], path: Path) -> None:
    """Cumulative spend per key over time: money when anything was priced, else GPU time."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise fail("--plot needs matplotlib: pip install 'gpushield[plot]'") from None
    money = any(point[2] for _, usage in rows for point in usage["history"])
    figure, axes = plt.subplots(figsize=(10, 5))
    for record, usage in rows:
        history = usage["history"]
        if not history:
            continue
        times = mdates.date2num(  # type: ignore[no-untyped-call]
            [datetime.fromtimestamp(point[0], UTC) for point in history])
        times = [times[0], *times]  # from zero at the first charge
        total = 0.0
        series = [0.0]
        for point in history:
            total += point[2] / 1_000_000 if money else point[1] / 1000
            series.append(total)
        axes.step(times, series, where="post", label=record.label or record.key_id)
    axes.set_title("gpushield: cumulative spend per key")
    axes.set_ylabel("money (currency units)" if money else "GPU seconds")
    axes.xaxis.set_major_formatter(
        mdates.DateFormatter("%m-%d %H:%M"))  # type: ignore[no-untyped-call]
    figure.autofmt_xdate()
    if axes.lines:
        axes.legend(loc="upper left", fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def account_table(rows: list[tuple[KeyRecord, dict[str, Any]]],
                  handed_out: dict[str, tuple[int, int]]) -> Table | None:
    """Account budgets: every key's share added up (and, locally, what the account guard has
    handed out in chunks, which bounds it)."""
    totals: dict[str, dict[str, Any]] = {}
    for _, usage in rows:
        for budget in usage["budgets"]:
            if budget["scope"] != "account":
                continue
            entry = totals.setdefault(budget["budget_id"], {**budget, "committed_gpu_ms": 0,
                                                             "committed_micros": 0,
                                                             "open_gpu_ms": 0,
                                                             "open_micros": 0})
            for name in ("committed_gpu_ms", "committed_micros", "open_gpu_ms", "open_micros"):
                entry[name] += budget[name]
    if not totals:
        return None
    table = Table(title="account budgets (all keys)")
    for column in ("budget", "spent", "left", "resets (UTC)", "handed out to keys"):
        table.add_column(column, no_wrap=True)
    for budget_id, budget in totals.items():
        name, spent, left, resets = _budget_cells(budget)
        out = handed_out.get(budget_id)
        table.add_row(name, spent, left, resets,
                      "-" if out is None else f"{_gpu_s(out[0])}\n{_money(out[1])}")
    return table


async def collect(admin: KeyAdmin, key_id: str | None,
                  account_budgets: Sequence[BudgetSpec] = ()
                  ) -> list[tuple[KeyRecord, dict[str, Any]]]:
    records = [(await admin.get(key_id)).record] if key_id else await admin.list()
    return [(record, await admin.usage(record.key_id, account_budgets))
            for record in records]


@one_line_errors
def run(
    key_id: str | None = typer.Argument(None, help="Only this key."),
    plot: Path | None = typer.Option(None, "--plot", help="Write spend over time to this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)."),
    config: Path | None = typer.Option(
        None, "--config", help="The local gate's gpushield.toml, for its account budgets "
        "(a remote gate adds its own)."),
    state_dir: Path = STATE_DIR_OPTION,
    gate: str | None = GATE_OPTION,
) -> None:
    """Per-key spend, open reservations, limits and remaining budget."""
    account: list[BudgetSpec] = []
    handed_out: dict[str, tuple[int, int]] = {}
    guard: KeyGuardCore | None = None
    if config is not None and gate is None:
        with config.open("rb") as handle:
            account = account_budgets_from(tomllib.load(handle))
        guard = open_key_guard(StateDir(state_dir))
        if isinstance(guard.account, AccountGuardCore):
            now = time.time()
            handed_out = {spec.budget_id: guard.account.granted(spec, now) for spec in account}
    rows = run_admin(state_dir, gate, lambda admin: collect(admin, key_id, account), guard)
    if as_json:
        print(json.dumps([{"key": record.to_dict(), "usage": usage} for record, usage in rows]))
    else:
        console.print(usage_table(rows))
        summary = account_table(rows, handed_out)
        if summary is not None:
            console.print(summary)
    if plot is not None:
        plot_spend(rows, plot)
        console.print(f"spend over time written to {plot}", highlight=False)
