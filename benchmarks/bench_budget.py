"""Cost of budgets on the key guard's hot path, as ratios measured in one run.

1. Per request, in-process against one sqlite key guard (CPython): admission + settlement of
   a key with budgets (a calendar day in GPU time and money, a rolling hour; alert thresholds
   and the anomaly guard on) against the same calls for a key with no budget, and against
   admission + the plain `complete` (the path before budgets existed: no charge computed).
   Note: every admission now writes its reservation row, budgets or not, so the no-budget
   rows already include the ledger write.
2. Throughput of one key guard under contention: N worker processes, each with its own
   connection (like N gate processes on one machine), admit+settle on the same key, against
   one process alone. SQLite's write lock serialises them, as a Durable Object would.
3. The account cap's chunk leasing: admit+settle of a key that also counts towards an account
   budget (chunks of 20 worst-case calls) against per-key budgets only, and how many account
   round trips (chunk leases) it took per request. Locally a lease is a direct call; at the
   edge it is one RPC to the account's Durable Object, so multiply by that RPC's cost.

Run: .venv/bin/python benchmarks/bench_budget.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _common import percentile
from gpushield_edge.keyguard import AdmitRequest, KeyLimits, SettleRequest
from gpushield_edge.keyguard.account import AccountGuardCore
from gpushield_edge.keyguard.budget import BudgetSpec, Price, set_key_budgets
from gpushield_edge.keyguard.guard import KeyGuardCore
from gpushield_edge.keyguard.settlement import SettlePolicy
from gpushield_edge.runtime_local.crypto import LocalCrypto
from gpushield_edge.runtime_local.storage import SqliteStorage
from gpushield_wire import algorithms, credentials

console = Console(width=None if sys.stdout.isatty() else 120)
KEK = bytes(range(32))
MODEL = "summarize"
PRICE = Price(micros_per_gpu_s=400, min_micros=100)
HUGE = 10**15
KEY_BUDGETS = (
    BudgetSpec("day", "day", tz="Europe/Paris", limit_gpu_ms=HUGE, limit_micros=HUGE),
    BudgetSpec("hour", "hour", rolling=True, limit_gpu_ms=HUGE),
)
ACCOUNT = BudgetSpec("month", "month", limit_micros=HUGE, chunk_micros=20 * PRICE.charge(2000))
POLICY = SettlePolicy()  # default thresholds and anomaly rules, all on


@dataclass
class Bench:
    core: KeyGuardCore
    account: AccountGuardCore
    loop: asyncio.AbstractEventLoop
    secrets: dict[str, bytes]
    leases_taken: int = 0

    @classmethod
    def open(cls, path: Path) -> Bench:
        storage = SqliteStorage(path)
        account = AccountGuardCore(storage)
        account.migrate()
        core = KeyGuardCore(storage, LocalCrypto(KEK), account=account)
        core.migrate()
        bench = cls(core, account, asyncio.new_event_loop(), {})
        lease = account.lease

        async def counting_lease(*args: object, **kwargs: object) -> tuple[int, int]:
            bench.leases_taken += 1
            return await lease(*args, **kwargs)  # type: ignore[arg-type]

        account.lease = counting_lease  # type: ignore[method-assign]
        return bench

    def new_key(self, budgets: tuple[BudgetSpec, ...]) -> tuple[str, bytes]:
        secret = credentials.new_secret()
        record = self.loop.run_until_complete(self.core.create_key(
            key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
            scopes=("*",), limits=KeyLimits(rate_per_minute=1e9, burst=10**9,
                                            max_concurrency=10**6, max_call_gpu_ms=2000),
            expires_at=None, now=time.time()))
        self.core.storage.atomic(lambda: set_key_budgets(self.core.storage.query,
                                                         record.key_id, budgets))
        self.secrets[record.key_id] = secret
        return record.key_id, secret


def request(key_id: str, secret: bytes, account: tuple[BudgetSpec, ...] = ()) -> AdmitRequest:
    now = time.time()
    base = secrets.token_bytes(16)
    return AdmitRequest(
        key_id=key_id, alg=algorithms.HMAC_SHA256, signature_base=base,
        signature=hmac.new(secret, base, hashlib.sha256).digest(), model=MODEL,
        nonce=secrets.token_hex(8), nonce_expires_at=now + 300, now=now, lease_ttl_s=90,
        micros_per_gpu_s=PRICE.micros_per_gpu_s, min_micros=PRICE.min_micros,
        account_budgets=tuple(spec.to_dict() for spec in account))


def one_call(bench: Bench, admit: AdmitRequest, *, settle: bool) -> None:
    result = bench.loop.run_until_complete(bench.core.admit(admit))
    assert result.outcome == "admitted", result.code
    lease = str(result.lease_id)
    if settle:
        bench.core.settle(SettleRequest(admit.key_id, lease, None, None, time.time(), ran=True,
                                        used_ms=700, policy=POLICY))
    else:
        bench.core.complete(admit.key_id, lease, None, None, time.time())


@dataclass(frozen=True)
class Case:
    key: tuple[str, bytes]
    settle: bool
    account: tuple[BudgetSpec, ...] = ()

    def requests(self, n: int) -> list[AdmitRequest]:
        """n signed admissions, each with its own nonce, built before any is timed."""
        return [request(*self.key, self.account) for _ in range(n)]


def sample(bench: Bench, case: Case, n: int) -> list[float]:
    """Microseconds per admit + settle (or complete); the requests are built untimed."""
    out = []
    for admit in case.requests(n):
        started = time.perf_counter_ns()
        one_call(bench, admit, settle=case.settle)
        out.append((time.perf_counter_ns() - started) / 1000.0)
    return out


def per_request(n: int) -> Table:
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench.open(Path(tmp) / "keys.db")
        plain = bench.new_key(())
        budgeted = bench.new_key(KEY_BUDGETS)
        shared = bench.new_key(KEY_BUDGETS)
        cases = {
            "admit + complete, no budget (baseline)": Case(plain, settle=False),
            "admit + settle, no budget": Case(plain, settle=True),
            "admit + settle, 2 key budgets": Case(budgeted, settle=True),
            "admit + settle, 2 key budgets + account cap":
                Case(shared, settle=True, account=(ACCOUNT,)),
        }
        for case in cases.values():  # warm up caches and the WAL
            sample(bench, case, max(50, n // 10))
        results: dict[str, list[float]] = {name: [] for name in cases}
        rounds = 10
        bench.leases_taken = 0
        for _ in range(rounds):  # interleaved, so drift hits every case alike
            for name, case in cases.items():
                results[name] += sample(bench, case, n // rounds)
        leases = bench.leases_taken
    base = statistics.median(results["admit + complete, no budget (baseline)"])
    per_key = statistics.median(results["admit + settle, 2 key budgets"])
    table = Table(title=f"1+3. key guard per request (CPython, sqlite, n={n} each)")
    for column in ("path", "p50 µs", "p99 µs", "× baseline", "× per-key budgets"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for name, samples in results.items():
        p50 = statistics.median(samples)
        table.add_row(name, f"{p50:.0f}", f"{percentile(samples, 0.99):.0f}",
                      f"{p50 / base:.2f}", f"{p50 / per_key:.2f}")
    table.caption = (f"account chunk leases: {leases} for {n} account-capped requests "
                     f"({leases / n:.3f} account round trips per request)")
    return table


def _worker(args: tuple[str, str, bytes, int, float]) -> tuple[int, float, float]:
    path, key_id, secret, n, start_at = args
    bench = Bench.open(Path(path))
    admissions = Case((key_id, secret), settle=True).requests(n)
    while time.time() < start_at:
        time.sleep(0.001)
    started = time.perf_counter()
    wall_start = time.time()
    for admit in admissions:
        one_call(bench, admit, settle=True)
    return n, wall_start, wall_start + (time.perf_counter() - started)


def contention(n: int, workers: int) -> Table:
    table = Table(title=f"2. one key guard under contention (admit+settle, {n} per process)")
    for column in ("processes", "requests/s", "× uncontended"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.db"
        bench = Bench.open(path)
        key_id, secret = bench.new_key(KEY_BUDGETS)
        context = multiprocessing.get_context("spawn")
        single = None
        for count in (1, workers):
            with context.Pool(count) as pool:
                start_at = time.time() + 1.5  # after every worker has imported and opened
                results = pool.map(_worker, [(str(path), key_id, secret, n, start_at)] * count)
            total = sum(r[0] for r in results)
            span = max(r[2] for r in results) - min(r[1] for r in results)
            rate = total / span
            single = single or rate
            table.add_row(str(count), f"{rate:,.0f}", f"{rate / single:.2f}")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (CI smoke run)")
    args = parser.parse_args()
    n, n_contended, workers = (1000, 300, 4) if args.quick else (10_000, 3000, 4)
    console.print(per_request(n))
    console.print(contention(n_contended, workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
