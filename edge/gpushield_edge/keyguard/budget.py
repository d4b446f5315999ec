"""GPU-time and money budgets: reserve the worst case before dispatch, settle what was used.

The algorithm, written once against `SqlStorage` (it runs inside the key guard's admission
transaction locally and in the key's Durable Object at the edge):

- **Reserve** (inside `_decide`, same transaction as every other admission check): a call may
  use at most the key's per-call GPU cap (RunPod stops the job there: `policy.executionTimeout`),
  so that cap, and its price, is reserved against every budget the call counts towards. If any
  budget cannot take it the request is refused with `budget_exceeded` and nothing is written.
- **Settle** (in `complete`): the backend's reported execution time, clamped to [0, reserved],
  replaces the reservation; the difference is released. Unknown usage of a call that may have
  run is charged at the reserved worst case (fail closed: it is the most the platform could
  have billed).
- **Expire**: a reservation whose gate died keeps its worst-case amount as the charge (the GPU
  may have run up to its cap and we cannot know) and stops holding anything else (its
  concurrency lease frees itself). A late settle of an expired reservation trues it down to
  what was really used — once: the ledger row is keyed by the reservation id and a settled row
  is never settled again. Amounts only ever go *down* after the admission check, which is what
  makes "settled + open ≤ limit" an invariant rather than a hope.

Counters: every charge is attributed to the instant it was reserved. Each budget keeps running
sums per bucket (`budget_usage`): one bucket per calendar period, or sixty buckets per rolling
window. A rolling window's sum includes the whole bucket its start falls into, so it may count
up to one bucket of older spend (refusing slightly early) but never too little. Buckets have no
upper time bound in the sum, so a clock that jumps backwards still sees every later charge.

Money is integer micro-units (1e-6 of the currency) and GPU time integer milliseconds: sums are
exact and identical in CPython and Pyodide.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .periods import ROLLING_SECONDS, UNITS, PeriodUnit, calendar_period, zone

Query = Callable[..., list[tuple[Any, ...]]]

# Rolling windows are summed over this many buckets (plus the partial oldest one).
ROLLING_BUCKETS = 60
# Default alert thresholds, in percent of each budget.
DEFAULT_THRESHOLDS: tuple[int, ...] = (50, 80, 100)
ACCOUNT_PREFIX = "account:"

BUDGET_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS budgets (
        key_id TEXT NOT NULL,
        budget_id TEXT NOT NULL,
        spec TEXT NOT NULL,
        PRIMARY KEY (key_id, budget_id)
    ) WITHOUT ROWID""",
    # owner is a key id (key budgets, and a key's share of an account budget) or
    # "account:<id>" (chunks the account guard has handed out).
    """CREATE TABLE IF NOT EXISTS budget_usage (
        owner TEXT NOT NULL,
        budget_id TEXT NOT NULL,
        bucket REAL NOT NULL,
        gpu_ms INTEGER NOT NULL,
        micros INTEGER NOT NULL,
        PRIMARY KEY (owner, budget_id, bucket)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS reservations (
        key_id TEXT NOT NULL,
        res_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        model TEXT NOT NULL,
        reserved_gpu_ms INTEGER NOT NULL,
        reserved_micros INTEGER NOT NULL,
        micros_per_gpu_s INTEGER NOT NULL,
        min_micros INTEGER NOT NULL,
        state TEXT NOT NULL,
        charged_gpu_ms INTEGER,
        charged_micros INTEGER,
        settled_at REAL,
        buckets TEXT NOT NULL,
        country TEXT,
        PRIMARY KEY (key_id, res_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS reservations_by_time ON reservations (key_id, created_at)",
    # Open reservations are few (bounded by the concurrency cap) among many settled ones: a
    # partial index, named in the queries (INDEXED BY) so the planner never scans the ledger.
    "CREATE INDEX IF NOT EXISTS reservations_open ON reservations (key_id, expires_at) "
    "WHERE state = 'open'",
    # Chunks of account budgets this key holds, per bucket (see account.py).
    """CREATE TABLE IF NOT EXISTS budget_chunks (
        key_id TEXT NOT NULL,
        budget_id TEXT NOT NULL,
        bucket REAL NOT NULL,
        gpu_ms INTEGER NOT NULL,
        micros INTEGER NOT NULL,
        PRIMARY KEY (key_id, budget_id, bucket)
    ) WITHOUT ROWID""",
    # Alert thresholds already sent, once per budget period (see alerts/).
    """CREATE TABLE IF NOT EXISTS budget_alerts (
        owner TEXT NOT NULL,
        budget_id TEXT NOT NULL,
        period REAL NOT NULL,
        threshold INTEGER NOT NULL,
        sent_at REAL NOT NULL,
        PRIMARY KEY (owner, budget_id, period, threshold)
    ) WITHOUT ROWID""",
)


class BudgetSpecError(ValueError):
    """A budget definition that cannot be enforced (the message names the field)."""


def _optional_count(document: dict[str, Any], name: str) -> int | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**15:
        raise BudgetSpecError(f"{name} must be a whole number between 0 and 1e15")
    return value


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """One budget: a limit in GPU milliseconds and/or money micro-units per period.

    `model` narrows a key budget to one model (a per-model limit within a key). `chunk_*` only
    matter for account budgets: how much a key guard leases from the account at a time.
    """

    budget_id: str
    unit: PeriodUnit
    rolling: bool = False
    tz: str = "UTC"
    limit_gpu_ms: int | None = None
    limit_micros: int | None = None
    model: str | None = None
    chunk_gpu_ms: int | None = None
    chunk_micros: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, document: Any) -> BudgetSpec:
        """Validates a budget from the admin API, the config or storage."""
        if not isinstance(document, dict):
            raise BudgetSpecError("a budget must be an object")
        unknown = set(document) - set(cls.__dataclass_fields__)
        if unknown:
            raise BudgetSpecError(f"unknown budget fields: {', '.join(sorted(unknown))}")
        unit = document.get("unit")
        if unit not in UNITS:
            raise BudgetSpecError("unit must be one of: " + ", ".join(UNITS))
        rolling = document.get("rolling", False)
        if not isinstance(rolling, bool):
            raise BudgetSpecError("rolling must be true or false")
        tz = document.get("tz", "UTC")
        if not isinstance(tz, str):
            raise BudgetSpecError("tz must be an IANA time zone name")
        try:
            zone(tz)
        except ValueError as error:
            raise BudgetSpecError(str(error)) from None
        model = document.get("model")
        if model is not None and (not isinstance(model, str) or not 0 < len(model) <= 128):
            raise BudgetSpecError("model must be a model name")
        default_id = f"{unit}{'-rolling' if rolling else ''}{'-' + model if model else ''}"
        budget_id = document.get("budget_id", default_id)
        if not isinstance(budget_id, str) or not 0 < len(budget_id) <= 64:
            raise BudgetSpecError("budget_id must be a short name")
        spec = cls(
            budget_id=budget_id, unit=unit, rolling=rolling, tz=tz,
            limit_gpu_ms=_optional_count(document, "limit_gpu_ms"),
            limit_micros=_optional_count(document, "limit_micros"),
            model=model,
            chunk_gpu_ms=_optional_count(document, "chunk_gpu_ms"),
            chunk_micros=_optional_count(document, "chunk_micros"),
        )
        if spec.limit_gpu_ms is None and spec.limit_micros is None:
            raise BudgetSpecError("a budget needs limit_gpu_ms and/or limit_micros")
        return spec

    # -- windows ----------------------------------------------------------------------------

    def bucket_width(self) -> float:
        return ROLLING_SECONDS[self.unit] / ROLLING_BUCKETS

    def bucket_of(self, t: float) -> float:
        """The usage bucket a charge reserved at `t` is added to."""
        if self.rolling:
            width = self.bucket_width()
            return math.floor(t / width) * width
        return calendar_period(t, self.unit, zone(self.tz)).start

    def window(self, now: float) -> tuple[float, float, float]:
        """(lowest bucket, bucket bound, reset time) of the window containing `now`.

        Calendar: exactly this period's bucket. Rolling: every bucket from the one holding
        `now - length` on, unbounded above (clock jumps), resetting bucket by bucket."""
        if self.rolling:
            width = self.bucket_width()
            low = math.floor((now - ROLLING_SECONDS[self.unit]) / width) * width
            return low, math.inf, low + width + ROLLING_SECONDS[self.unit]
        period = calendar_period(now, self.unit, zone(self.tz))
        return period.start, period.end, period.end

    def applies_to(self, model: str) -> bool:
        return self.model is None or self.model == model


@dataclass(frozen=True, slots=True)
class Price:
    """Money per GPU-second and a minimum charge per call that ran, in micro-units."""

    micros_per_gpu_s: int = 0
    min_micros: int = 0

    def charge(self, gpu_ms: int) -> int:
        """A call that ran `gpu_ms`: the time at the rate (rounded up), at least the minimum."""
        return max(self.min_micros, (gpu_ms * self.micros_per_gpu_s + 999) // 1000)


@dataclass(frozen=True, slots=True)
class BudgetRefusal:
    budget_id: str
    scope: str  # "key" or "account"
    resets_at: float
    # Set when the key guard can still ask the account guard for a larger chunk.
    chunk_needed: tuple[BudgetSpec, float, int, int] | None = None

    def details(self, now: float) -> dict[str, Any]:
        """The refusal's details; `chunk` is internal (account.top_up reads and strips it)."""
        document: dict[str, Any] = {"budget": self.budget_id, "scope": self.scope,
                                    "resets_in_s": max(0, math.ceil(self.resets_at - now))}
        if self.chunk_needed is not None:
            spec, bucket, gpu_ms, micros = self.chunk_needed
            document["chunk"] = {"spec": spec.to_dict(), "bucket": bucket, "gpu_ms": gpu_ms,
                                 "micros": micros}
        return document


@dataclass(frozen=True, slots=True)
class ReservationPlan:
    gpu_ms: int
    micros: int
    price: Price
    buckets: tuple[tuple[str, float], ...]


def _sum_usage(query: Query, owner: str, budget_id: str, low: float, high: float
               ) -> tuple[int, int]:
    if math.isinf(high):
        rows = query(
            "SELECT COALESCE(SUM(gpu_ms), 0), COALESCE(SUM(micros), 0) FROM budget_usage "
            "WHERE owner = ? AND budget_id = ? AND bucket >= ?", (owner, budget_id, low))
    else:
        rows = query(
            "SELECT COALESCE(SUM(gpu_ms), 0), COALESCE(SUM(micros), 0) FROM budget_usage "
            "WHERE owner = ? AND budget_id = ? AND bucket >= ? AND bucket < ?",
            (owner, budget_id, low, high))
    return int(rows[0][0]), int(rows[0][1])


def _fits(used: tuple[int, int], extra: tuple[int, int], limit_ms: int | None,
          limit_micros: int | None) -> bool:
    if limit_ms is not None and used[0] + extra[0] > limit_ms:
        return False
    return limit_micros is None or used[1] + extra[1] <= limit_micros


@functools.lru_cache(maxsize=1024)
def _spec_from_text(text: str) -> BudgetSpec:
    return BudgetSpec.from_dict(json.loads(text))


def parse_specs(documents: Sequence[dict[str, Any]]) -> list[BudgetSpec]:
    """Budget specs that arrive with each request (account budgets), parsed once each."""
    return [_spec_from_text(json.dumps(doc, sort_keys=True)) for doc in documents]


def key_budgets(query: Query, key_id: str) -> list[BudgetSpec]:
    rows = query("SELECT spec FROM budgets WHERE key_id = ? ORDER BY budget_id", (key_id,))
    return [_spec_from_text(str(row[0])) for row in rows]


def set_key_budgets(query: Query, key_id: str, specs: Iterable[BudgetSpec]) -> None:
    """Replaces a key's budgets (call inside a transaction). Usage so far is kept: lowering a
    limit below what was already spent refuses the key's next calls in that period."""
    query("DELETE FROM budgets WHERE key_id = ?", (key_id,))
    for spec in specs:
        query("INSERT INTO budgets (key_id, budget_id, spec) VALUES (?, ?, ?)",
              (key_id, spec.budget_id, json.dumps(spec.to_dict())))


def plan(
    query: Query,
    key_id: str,
    model: str,
    max_call_gpu_ms: int,
    price: Price,
    account_budgets: Sequence[BudgetSpec],
    now: float,
) -> ReservationPlan | BudgetRefusal:
    """Read-only: does the worst case of this call fit every budget it counts towards?

    Budget time never runs backwards for a key: after a clock step back, windows are placed
    at the latest reservation's time, so an old window cannot reopen around spend that a
    later window already counted (one indexed lookup)."""
    (latest,) = query("SELECT MAX(created_at) FROM reservations WHERE key_id = ?",
                      (key_id,))[0]
    if latest is not None and float(latest) > now:
        now = float(latest)
    worst = (max_call_gpu_ms, price.charge(max_call_gpu_ms))
    buckets: list[tuple[str, float]] = []
    for spec in key_budgets(query, key_id):
        if not spec.applies_to(model):
            continue
        low, high, resets = spec.window(now)
        used = _sum_usage(query, key_id, spec.budget_id, low, high)
        if not _fits(used, worst, spec.limit_gpu_ms, spec.limit_micros):
            return BudgetRefusal(spec.budget_id, "key", resets)
        buckets.append((spec.budget_id, spec.bucket_of(now)))
    for spec in account_budgets:
        if not spec.applies_to(model):
            continue
        # A key's share of an account budget is bounded per bucket by the chunks it holds.
        budget_id = ACCOUNT_PREFIX + spec.budget_id
        bucket = spec.bucket_of(now)
        used = _sum_usage(query, key_id, budget_id, bucket, bucket + 1e-6)
        granted = query(
            "SELECT gpu_ms, micros FROM budget_chunks WHERE key_id = ? AND budget_id = ? "
            "AND bucket = ?", (key_id, budget_id, bucket))
        have = (int(granted[0][0]), int(granted[0][1])) if granted else (0, 0)
        need_ms = used[0] + worst[0] - have[0] if spec.limit_gpu_ms is not None else 0
        need_micros = used[1] + worst[1] - have[1] if spec.limit_micros is not None else 0
        if need_ms > 0 or need_micros > 0:
            _, _, resets = spec.window(now)
            return BudgetRefusal(spec.budget_id, "account", resets, chunk_needed=(
                spec, bucket, max(0, need_ms), max(0, need_micros)))
        buckets.append((budget_id, bucket))
    return ReservationPlan(worst[0], worst[1], price, tuple(buckets))


def _add_usage(query: Query, owner: str, budget_id: str, bucket: float, gpu_ms: int,
               micros: int) -> None:
    query(
        "INSERT INTO budget_usage (owner, budget_id, bucket, gpu_ms, micros) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, budget_id, bucket) DO UPDATE SET "
        "gpu_ms = MAX(0, gpu_ms + excluded.gpu_ms), micros = MAX(0, micros + excluded.micros)",
        (owner, budget_id, bucket, gpu_ms, micros),
    )


def reserve(query: Query, key_id: str, res_id: str, model: str, chosen: ReservationPlan,
            now: float, expires_at: float, country: str | None = None) -> None:
    """Writes the reservation planned by `plan` (same transaction, after every check)."""
    query(
        "INSERT INTO reservations (key_id, res_id, created_at, expires_at, model, "
        "reserved_gpu_ms, reserved_micros, micros_per_gpu_s, min_micros, state, buckets, "
        "country) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
        (key_id, res_id, now, expires_at, model, chosen.gpu_ms, chosen.micros,
         chosen.price.micros_per_gpu_s, chosen.price.min_micros,
         json.dumps([list(pair) for pair in chosen.buckets]), country),
    )
    for budget_id, bucket in chosen.buckets:
        _add_usage(query, key_id, budget_id, bucket, chosen.gpu_ms, chosen.micros)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a settle did (for alerts, anomaly checks and the audit event)."""

    res_id: str
    model: str
    created_at: float
    reserved_gpu_ms: int
    reserved_micros: int
    charged_gpu_ms: int
    charged_micros: int
    applied: bool  # False: it was already settled (a duplicate), nothing changed
    # Where the call came from (the edge's country code), if the gate knew.
    country: str | None = None


def settle(query: Query, key_id: str, res_id: str, ran: bool, used_ms: int | None,
           now: float) -> Settlement | None:
    """Charges one reservation exactly once (call inside a transaction).

    `ran` False: the backend provably never started (charge nothing). `used_ms` None with
    `ran`: usage unknown, charge the reserved worst case. Otherwise the reported time, clamped
    to [0, reserved] so an absurd report can never charge more than was reserved.
    """
    rows = query(
        "SELECT state, model, created_at, reserved_gpu_ms, reserved_micros, micros_per_gpu_s, "
        "min_micros, charged_gpu_ms, charged_micros, buckets, country FROM reservations "
        "WHERE key_id = ? AND res_id = ?", (key_id, res_id))
    if not rows:
        return None
    (state, model, created_at, reserved_ms, reserved_micros, rate, minimum, charged_ms,
     charged_micros, buckets, country) = rows[0]
    reserved_ms, reserved_micros = int(reserved_ms), int(reserved_micros)
    if state == "settled":
        return Settlement(res_id, str(model), float(created_at), reserved_ms, reserved_micros,
                          int(charged_ms), int(charged_micros), applied=False)
    if not ran:
        ms, micros = 0, 0
    elif used_ms is None:
        ms, micros = reserved_ms, reserved_micros
    else:
        ms = min(max(0, int(used_ms)), reserved_ms)
        micros = min(reserved_micros, Price(int(rate), int(minimum)).charge(ms))
    for budget_id, bucket in json.loads(str(buckets)):
        _add_usage(query, key_id, str(budget_id), float(bucket), ms - reserved_ms,
                   micros - reserved_micros)
    query(
        "UPDATE reservations SET state = 'settled', charged_gpu_ms = ?, charged_micros = ?, "
        "settled_at = ? WHERE key_id = ? AND res_id = ?", (ms, micros, now, key_id, res_id))
    return Settlement(res_id, str(model), float(created_at), reserved_ms, reserved_micros,
                      ms, micros, applied=True,
                      country=None if country is None else str(country))


def expire(query: Query, key_id: str, now: float) -> None:
    """Marks reservations whose gate never settled them: they keep their worst case as the
    charge (no counter changes) until a late settle trues them down."""
    query(
        "UPDATE reservations INDEXED BY reservations_open SET state = 'expired', "
        "charged_gpu_ms = reserved_gpu_ms, charged_micros = reserved_micros "
        "WHERE key_id = ? AND state = 'open' AND expires_at <= ?", (key_id, now))


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget's state now, for `gpushield usage` and alerts."""

    budget_id: str
    scope: str
    unit: str
    rolling: bool
    limit_gpu_ms: int | None
    limit_micros: int | None
    committed_gpu_ms: int  # settled + expired + open reservations
    committed_micros: int
    open_gpu_ms: int  # of which open reservations
    open_micros: int
    period_start: float
    resets_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(query: Query, key_id: str, spec: BudgetSpec, now: float,
           owner_budget_id: str | None = None) -> BudgetStatus:
    budget_id = owner_budget_id or spec.budget_id
    low, high, resets = spec.window(now)
    used = _sum_usage(query, key_id, budget_id, low, high)
    open_ms = open_micros = 0
    for res_buckets, gpu_ms, micros in query(
            "SELECT buckets, reserved_gpu_ms, reserved_micros FROM reservations "
            "INDEXED BY reservations_open WHERE key_id = ? AND state = 'open' "
            "AND expires_at > ?", (key_id, now)):
        for bid, bucket in json.loads(str(res_buckets)):
            if bid == budget_id and low <= float(bucket) < high:
                open_ms += int(gpu_ms)
                open_micros += int(micros)
    start = low if not spec.rolling else now - ROLLING_SECONDS[spec.unit]
    return BudgetStatus(spec.budget_id, "key" if owner_budget_id is None else "account",
                        spec.unit, spec.rolling, spec.limit_gpu_ms, spec.limit_micros,
                        used[0], used[1], open_ms, open_micros, start, resets)
