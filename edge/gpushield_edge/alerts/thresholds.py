"""Which alert thresholds a settlement crossed, each recorded once per budget period.

Thresholds are percentages of each of a key's budgets (default 50/80/100), measured on
*settled* spend (open reservations are worst cases and would raise false alarms). 100% also
fires when the budget can no longer take one more worst-case call: that is the moment callers
start getting `budget_exceeded`, even if the last few micro-units are technically unspent.

The sent thresholds are rows in the key guard's `budget_alerts` table, written in the same
transaction as the settlement, so concurrent settles cannot both send the same alert and a
crash cannot send one twice. Runs inside the guard: standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..keyguard import budget
from ..keyguard.budget import BudgetSpec, Query, Settlement
from ..keyguard.periods import ROLLING_SECONDS


def _period_mark(spec: BudgetSpec, status: budget.BudgetStatus, now: float) -> float:
    """The period an alert is deduplicated in: the calendar period, or for a rolling budget
    the window-length slot of `now` (at most one alert per threshold per window length)."""
    if not spec.rolling:
        return status.period_start
    length = ROLLING_SECONDS[spec.unit]
    return math.floor(now / length) * length


def crossed(query: Query, key_id: str, settled: Settlement, thresholds: Sequence[int],
            now: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if not thresholds:
        return events
    for spec in budget.key_budgets(query, key_id):
        if not spec.applies_to(settled.model):
            continue
        status = budget.status(query, key_id, spec, now)
        level = 0.0
        exhausted = False
        for limit, committed, open_amount, worst in (
                (spec.limit_gpu_ms, status.committed_gpu_ms, status.open_gpu_ms,
                 settled.reserved_gpu_ms),
                (spec.limit_micros, status.committed_micros, status.open_micros,
                 settled.reserved_micros)):
            if limit is None:
                continue
            spent = committed - open_amount
            level = max(level, 100.0 if limit == 0 else spent * 100.0 / limit)
            exhausted = exhausted or spent + worst > limit
        mark = _period_mark(spec, status, now)
        for threshold in sorted(set(thresholds)):
            if level < threshold and not (threshold >= 100 and exhausted):
                continue
            if query("SELECT 1 FROM budget_alerts WHERE owner = ? AND budget_id = ? AND "
                     "period = ? AND threshold = ?", (key_id, spec.budget_id, mark, threshold)):
                continue
            query("INSERT INTO budget_alerts (owner, budget_id, period, threshold, sent_at) "
                  "VALUES (?, ?, ?, ?, ?)", (key_id, spec.budget_id, mark, threshold, now))
            events.append({
                "kind": "budget_threshold", "key_id": key_id, "budget_id": spec.budget_id,
                "threshold": threshold, "level_percent": round(level, 2),
                "unit": spec.unit, "rolling": spec.rolling, "tz": spec.tz,
                "spent_gpu_ms": status.committed_gpu_ms - status.open_gpu_ms,
                "spent_micros": status.committed_micros - status.open_micros,
                "limit_gpu_ms": spec.limit_gpu_ms, "limit_micros": spec.limit_micros,
                "resets_at": status.resets_at, "at": now,
            })
    return events
