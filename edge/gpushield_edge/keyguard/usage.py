"""What a key has spent and holds, for `gpushield usage` and the admin API (read side).

Everything comes from the key's own guard tables, so the same function answers locally (one
sqlite file) and inside the key's Durable Object (its RPC `usage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import budget
from .budget import ACCOUNT_PREFIX, BudgetSpec
from .storage import SqlStorage

HISTORY_LIMIT = 20_000


def key_usage(storage: SqlStorage, key_id: str, now: float,
              account_budgets: Sequence[BudgetSpec] = (),
              history_since: float | None = None) -> dict[str, Any]:
    """Budgets (limit, committed, open, period), open reservations, totals and the charge
    history (reservation time, GPU ms, micro-units) since `history_since` (default 30 days)."""

    def work() -> dict[str, Any]:
        query = storage.query
        budget.expire(query, key_id, now)  # so the states shown are the true ones
        budgets = [budget.status(query, key_id, spec, now).to_dict()
                   for spec in budget.key_budgets(query, key_id)]
        for spec in account_budgets:
            share = budget.status(query, key_id, spec, now, ACCOUNT_PREFIX + spec.budget_id)
            document = share.to_dict()
            chunk = query("SELECT gpu_ms, micros FROM budget_chunks WHERE key_id = ? AND "
                          "budget_id = ? AND bucket = ?",
                          (key_id, ACCOUNT_PREFIX + spec.budget_id, spec.bucket_of(now)))
            document["chunk_gpu_ms"], document["chunk_micros"] = (
                (int(chunk[0][0]), int(chunk[0][1])) if chunk else (0, 0))
            budgets.append(document)
        open_rows = query(
            "SELECT res_id, created_at, expires_at, model, reserved_gpu_ms, reserved_micros "
            "FROM reservations INDEXED BY reservations_open WHERE key_id = ? "
            "AND state = 'open' ORDER BY created_at",
            (key_id,))
        totals = {state: {"count": int(count), "gpu_ms": int(gpu_ms or 0),
                          "micros": int(micros or 0)}
                  for state, count, gpu_ms, micros in query(
                      "SELECT state, COUNT(*), SUM(COALESCE(charged_gpu_ms, reserved_gpu_ms)), "
                      "SUM(COALESCE(charged_micros, reserved_micros)) FROM reservations "
                      "WHERE key_id = ? GROUP BY state", (key_id,))}
        since = now - 30 * 86400.0 if history_since is None else history_since
        history = query(
            "SELECT created_at, charged_gpu_ms, charged_micros FROM reservations "
            "WHERE key_id = ? AND created_at >= ? AND state != 'open' "
            "ORDER BY created_at LIMIT ?", (key_id, since, HISTORY_LIMIT))
        return {
            "key_id": key_id,
            "budgets": budgets,
            "open_reservations": [
                {"res_id": str(r[0]), "created_at": float(r[1]), "expires_at": float(r[2]),
                 "model": str(r[3]), "reserved_gpu_ms": int(r[4]), "reserved_micros": int(r[5])}
                for r in open_rows],
            "totals": totals,
            "history": [[float(t), int(ms), int(micros)] for t, ms, micros in history],
        }

    return storage.atomic(work)


def release_unused(storage: SqlStorage, key_id: str, account_budgets: Sequence[BudgetSpec],
                   now: float) -> list[tuple[BudgetSpec, float, int, int]]:
    """Key side of handing chunks back: shrink them to what is committed (one transaction);
    the caller then gives the returned amounts back to the account guard."""
    from .account import unused_chunks

    return storage.atomic(lambda: unused_chunks(storage.query, key_id, account_budgets, now))
