"""Account-wide budgets across keys, exact, without a global lock on the hot path.

Each key's guard is the only writer of its own state, so a budget shared by every key needs
one more owner: the account guard (locally the same sqlite database through `AccountGuardCore`,
at the edge one more Durable Object). Asking it on every request would make it the global
hot spot this design avoids, so key guards *lease chunks*:

- a key guard admits a call against an account budget only within the chunk it holds for the
  budget's current bucket (calendar period, or rolling-window bucket);
- when the call's worst case does not fit, `admit` asks the account guard for another chunk
  (the shortfall, at least `chunk_*`), outside the key's transaction, then decides again;
- the account guard grants only what is left under the cap, so the sum of all chunks, and
  hence of all spend, never exceeds it;
- chunks belong to a bucket: when the period ends they simply stop counting on both sides;
- when the cap is nearly handed out and a key needs more, the account guard *reclaims*: it
  asks the keys holding chunks in that bucket (largest first) to release what they have not
  committed (`unused_chunks`, key side first), takes that back, and grants again. No timers and
  no idle tracking: chunks move only when someone needs them. A crash between the key's
  release and the account's take-back loses that amount for the period — spend can only come
  out lower, never higher.

Most requests never leave their key's guard: with a chunk of N worst-case calls, one account
round trip per N admissions (benchmarks/bench_budget.py measures the ratio).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from .budget import (
    ACCOUNT_PREFIX,
    BUDGET_SCHEMA,
    BudgetSpec,
    Query,
    _add_usage,
    _sum_usage,
)
from .records import AdmitRequest, AdmitResult
from .storage import SqlStorage

ACCOUNT_SCHEMA: tuple[str, ...] = (
    *BUDGET_SCHEMA,
    """CREATE TABLE IF NOT EXISTS account_grants (
        account TEXT NOT NULL,
        budget_id TEXT NOT NULL,
        bucket REAL NOT NULL,
        key_id TEXT NOT NULL,
        gpu_ms INTEGER NOT NULL,
        micros INTEGER NOT NULL,
        PRIMARY KEY (account, budget_id, bucket, key_id)
    ) WITHOUT ROWID""",
)
# Each key leases this fraction of an account budget's limit when no chunk size is configured.
DEFAULT_CHUNK_FRACTION = 20
# Keys asked to hand back spare chunks per refused lease, at most.
RECLAIM_FROM = 16

Reclaim = Callable[[str, dict[str, Any], float], Awaitable[list[dict[str, Any]]]]
"""`reclaim(key_id, spec, now)`: that key guard's `release_unused` for one account budget
(locally a direct call, at the edge its RPC); returns what it released."""


class AccountPort(Protocol):
    """What a key guard asks the account guard (direct locally, an RPC at the edge)."""

    async def lease(self, key_id: str, spec: dict[str, Any], bucket: float, need_gpu_ms: int,
                    need_micros: int, now: float) -> tuple[int, int]: ...

    async def give_back(self, key_id: str, spec: dict[str, Any], bucket: float, gpu_ms: int,
                        micros: int, now: float) -> None: ...


def _chunk(limit: int | None, configured: int | None, need: int) -> int:
    if limit is None:
        return 0
    chunk = configured if configured is not None else max(1, limit // DEFAULT_CHUNK_FRACTION)
    return max(need, chunk)


class AccountGuardCore:
    """The account guard's state: how much of each account budget is handed out, per key."""

    def __init__(self, storage: SqlStorage, account: str = "default",
                 reclaim: Reclaim | None = None) -> None:
        self.storage = storage
        self.owner = ACCOUNT_PREFIX + account
        self.reclaim = reclaim

    def migrate(self) -> None:
        self.storage.atomic(lambda: [self.storage.query(s) for s in ACCOUNT_SCHEMA])

    def lease_now(self, key_id: str, spec: BudgetSpec, bucket: float, need_gpu_ms: int,
                  need_micros: int, now: float) -> tuple[int, int]:
        """Grants a chunk for `bucket`: at least the need, up to the chunk size, never past
        the cap. (0, 0) when even the need does not fit: the caller refuses the request."""

        def work() -> tuple[int, int]:
            query = self.storage.query
            low, high, _ = spec.window(now)
            if not low <= bucket < high:
                return 0, 0  # a bucket outside the current window: a stale or skewed caller
            used_ms, used_micros = _sum_usage(query, self.owner, spec.budget_id, low, high)
            grant = [0, 0]
            for index, (limit, used, configured, need) in enumerate((
                    (spec.limit_gpu_ms, used_ms, spec.chunk_gpu_ms, need_gpu_ms),
                    (spec.limit_micros, used_micros, spec.chunk_micros, need_micros))):
                if limit is None:
                    continue
                left = limit - used
                if need > left:
                    return 0, 0
                grant[index] = min(left, _chunk(limit, configured, need))
            if grant == [0, 0]:
                return 0, 0
            _add_usage(query, self.owner, spec.budget_id, bucket, grant[0], grant[1])
            _add_grant(query, self.owner, spec.budget_id, bucket, key_id, grant[0], grant[1])
            return grant[0], grant[1]

        return self.storage.atomic(work)

    def give_back_now(self, key_id: str, spec: BudgetSpec, bucket: float, gpu_ms: int,
                      micros: int) -> None:
        def work() -> None:
            query = self.storage.query
            rows = query(
                "SELECT gpu_ms, micros FROM account_grants WHERE account = ? AND budget_id = ? "
                "AND bucket = ? AND key_id = ?", (self.owner, spec.budget_id, bucket, key_id))
            if not rows:
                return
            # Never take back more than this key was granted (a confused caller).
            back_ms = min(gpu_ms, int(rows[0][0]))
            back_micros = min(micros, int(rows[0][1]))
            _add_usage(query, self.owner, spec.budget_id, bucket, -back_ms, -back_micros)
            _add_grant(query, self.owner, spec.budget_id, bucket, key_id, -back_ms, -back_micros)

        self.storage.atomic(work)

    def granted(self, spec: BudgetSpec, now: float) -> tuple[int, int]:
        low, high, _ = spec.window(now)
        return _sum_usage(self.storage.query, self.owner, spec.budget_id, low, high)

    def holders(self, spec: BudgetSpec, bucket: float, exclude: str) -> list[str]:
        rows = self.storage.query(
            "SELECT key_id FROM account_grants WHERE account = ? AND budget_id = ? AND "
            "bucket = ? AND key_id != ? AND (gpu_ms > 0 OR micros > 0) "
            "ORDER BY micros + gpu_ms DESC LIMIT ?",
            (self.owner, spec.budget_id, bucket, exclude, RECLAIM_FROM))
        return [str(row[0]) for row in rows]

    # The AccountPort, in-process.
    async def lease(self, key_id: str, spec: dict[str, Any], bucket: float, need_gpu_ms: int,
                    need_micros: int, now: float) -> tuple[int, int]:
        parsed = BudgetSpec.from_dict(spec)
        granted = self.lease_now(key_id, parsed, bucket, need_gpu_ms, need_micros, now)
        if granted != (0, 0) or self.reclaim is None:
            return granted
        # Nearly all handed out: take back what other keys hold but have not committed.
        for holder in self.holders(parsed, bucket, key_id):
            for item in await self.reclaim(holder, parsed.to_dict(), now):
                if float(item["bucket"]) == bucket:
                    self.give_back_now(holder, parsed, bucket, int(item["gpu_ms"]),
                                       int(item["micros"]))
            granted = self.lease_now(key_id, parsed, bucket, need_gpu_ms, need_micros, now)
            if granted != (0, 0):
                return granted
        return granted

    async def give_back(self, key_id: str, spec: dict[str, Any], bucket: float, gpu_ms: int,
                        micros: int, now: float) -> None:
        self.give_back_now(key_id, BudgetSpec.from_dict(spec), bucket, gpu_ms, micros)


def _add_grant(query: Query, owner: str, budget_id: str, bucket: float, key_id: str,
               gpu_ms: int, micros: int) -> None:
    query(
        "INSERT INTO account_grants (account, budget_id, bucket, key_id, gpu_ms, micros) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, budget_id, bucket, key_id) DO UPDATE "
        "SET gpu_ms = MAX(0, gpu_ms + excluded.gpu_ms), micros = MAX(0, micros + excluded.micros)",
        (owner, budget_id, bucket, key_id, gpu_ms, micros),
    )


def take_chunk(query: Query, key_id: str, spec: BudgetSpec, bucket: float, gpu_ms: int,
               micros: int) -> None:
    """Records a granted chunk in the key's guard (its own transaction)."""
    query(
        "INSERT INTO budget_chunks (key_id, budget_id, bucket, gpu_ms, micros) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, budget_id, bucket) DO UPDATE SET "
        "gpu_ms = gpu_ms + excluded.gpu_ms, micros = micros + excluded.micros",
        (key_id, ACCOUNT_PREFIX + spec.budget_id, bucket, gpu_ms, micros),
    )


def unused_chunks(query: Query, key_id: str, specs: Sequence[BudgetSpec], now: float
                  ) -> list[tuple[BudgetSpec, float, int, int]]:
    """Shrinks this key's current chunks to what it has committed and returns the excess, to
    be handed back to the account guard (call inside the key's transaction)."""
    released: list[tuple[BudgetSpec, float, int, int]] = []
    for spec in specs:
        budget_id = ACCOUNT_PREFIX + spec.budget_id
        bucket = spec.bucket_of(now)
        rows = query("SELECT gpu_ms, micros FROM budget_chunks WHERE key_id = ? AND "
                     "budget_id = ? AND bucket = ?", (key_id, budget_id, bucket))
        if not rows:
            continue
        used_ms, used_micros = _sum_usage(query, key_id, budget_id, bucket, bucket + 1e-6)
        spare_ms = max(0, int(rows[0][0]) - used_ms)
        spare_micros = max(0, int(rows[0][1]) - used_micros)
        if spare_ms or spare_micros:
            query("UPDATE budget_chunks SET gpu_ms = gpu_ms - ?, micros = micros - ? "
                  "WHERE key_id = ? AND budget_id = ? AND bucket = ?",
                  (spare_ms, spare_micros, key_id, budget_id, bucket))
            released.append((spec, bucket, spare_ms, spare_micros))
    return released


async def top_up(storage: SqlStorage, account: AccountPort | None, request: AdmitRequest,
                 result: AdmitResult) -> bool:
    """After a refusal for want of an account chunk: lease one and say whether to decide
    again. Runs between transactions (the account guard may be another Durable Object)."""
    chunk = result.budget.get("chunk") if result.code == "budget_exceeded" else None
    if chunk is None or account is None:
        return False
    spec = BudgetSpec.from_dict(chunk["spec"])
    bucket = float(chunk["bucket"])
    got_ms, got_micros = await account.lease(
        request.key_id, spec.to_dict(), bucket, int(chunk["gpu_ms"]), int(chunk["micros"]),
        request.now)
    if not got_ms and not got_micros:
        return False
    storage.atomic(lambda: take_chunk(storage.query, request.key_id, spec, bucket, got_ms,
                                      got_micros))
    return True


def public(result: AdmitResult) -> AdmitResult:
    """The refusal as the caller may see it (without the internal chunk request)."""
    if "chunk" not in result.budget:
        return result
    return replace(result, budget={k: v for k, v in result.budget.items() if k != "chunk"})


def local_reclaim(storage: SqlStorage) -> Reclaim:
    """`Reclaim` for key guards in the same local database (the local gate)."""

    async def reclaim(key_id: str, spec: dict[str, Any], now: float) -> list[dict[str, Any]]:
        released = storage.atomic(lambda: unused_chunks(
            storage.query, key_id, [BudgetSpec.from_dict(spec)], now))
        return [{"spec": item.to_dict(), "bucket": bucket, "gpu_ms": ms, "micros": micros}
                for item, bucket, ms, micros in released]

    return reclaim


AccountCall = Callable[[str, str], Awaitable[str]]
"""`call(method, payload_json) -> result_json`: one RPC to the account guard's object."""


class AccountEndpoint:
    """Serves the account guard's RPCs (its Durable Object's side), JSON in and out;
    `METHODS` is everything a key guard may ask it."""

    def __init__(self, core: AccountGuardCore) -> None:
        self.core = core
        self.METHODS: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "lease": self.lease,
            "give_back": self.give_back,
        }

    async def dispatch(self, method: str, payload: str) -> str:
        handler = self.METHODS.get(method)
        if handler is None:
            raise ValueError(f"unknown account method {method!r}")
        return json.dumps({"ok": await handler(json.loads(payload))})

    async def lease(self, args: dict[str, Any]) -> Any:
        return list(await self.core.lease(
            str(args["key_id"]), dict(args["spec"]), float(args["bucket"]),
            int(args["need_gpu_ms"]), int(args["need_micros"]), float(args["now"])))

    async def give_back(self, args: dict[str, Any]) -> Any:
        await self.core.give_back(str(args["key_id"]), dict(args["spec"]),
                                  float(args["bucket"]), int(args["gpu_ms"]),
                                  int(args["micros"]), float(args["now"]))
        return None


class RemoteAccount:
    """The AccountPort over RPC: what a key guard's Durable Object holds at the edge."""

    def __init__(self, call: AccountCall) -> None:
        self._call = call

    async def _ask(self, method: str, args: dict[str, Any]) -> Any:
        return json.loads(await self._call(method, json.dumps(args)))["ok"]

    async def lease(self, key_id: str, spec: dict[str, Any], bucket: float, need_gpu_ms: int,
                    need_micros: int, now: float) -> tuple[int, int]:
        granted = await self._ask("lease", {
            "key_id": key_id, "spec": spec, "bucket": bucket, "need_gpu_ms": need_gpu_ms,
            "need_micros": need_micros, "now": now})
        return int(granted[0]), int(granted[1])

    async def give_back(self, key_id: str, spec: dict[str, Any], bucket: float, gpu_ms: int,
                        micros: int, now: float) -> None:
        await self._ask("give_back", {"key_id": key_id, "spec": spec, "bucket": bucket,
                                      "gpu_ms": gpu_ms, "micros": micros, "now": now})


def remote_reclaim(guard_call: Callable[[str, str, str], Awaitable[str]]) -> Reclaim:
    """`Reclaim` at the edge: the key's guard object's `release_unused` RPC (keyguard/rpc.py
    `GuardCall` shape: key id, method, JSON)."""

    async def reclaim(key_id: str, spec: dict[str, Any], now: float) -> list[dict[str, Any]]:
        answer = json.loads(await guard_call(key_id, "release_unused", json.dumps(
            {"key_id": key_id, "account_budgets": [spec]})))
        return list(answer.get("ok", []))

    return reclaim
