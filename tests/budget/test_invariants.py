"""Property-based: any interleaving of admissions, settles (late, duplicate, absurd, never),
crashes and clock jumps keeps the ledger exact and every budget within its limit."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpushield_edge.keyguard.budget import BudgetSpec, Price, expire
from gpushield_edge.keyguard.budget import status as budget_status

from .guardkit import T0, Guard, ledger_check

DAY = BudgetSpec("day", "day", limit_gpu_ms=10_000, limit_micros=30_000)
ROLLING = BudgetSpec("roll", "hour", rolling=True, limit_gpu_ms=6_000)
PRICE = Price(micros_per_gpu_s=2_000, min_micros=500)

op = st.one_of(
    st.tuples(st.just("admit"), st.sampled_from(["summarize", "other"])),
    st.tuples(st.just("settle"), st.integers(0, 30), st.one_of(
        st.none(), st.integers(-10**6, 10**12)), st.booleans()),
    st.tuples(st.just("tick"), st.floats(-7200, 7200)),
)


def _check(guard: Guard, key: str, now: float) -> None:
    ledger_check(guard)
    for spec in (DAY, ROLLING):
        ms, micros = guard.committed(key, spec, now)
        assert spec.limit_gpu_ms is None or ms <= spec.limit_gpu_ms
        assert spec.limit_micros is None or micros <= spec.limit_micros


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=40), st.integers(200, 3000))
def test_any_history_keeps_budgets_and_ledger_exact(ops: list[tuple[object, ...]],
                                                    cap_ms: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        loop = asyncio.new_event_loop()
        try:
            guard = Guard.open(Path(tmp) / "keys.db", loop)
            key = guard.new_key((DAY, ROLLING), max_call_gpu_ms=cap_ms)
            now = latest = T0
            leases: list[str] = []
            charged: dict[str, int] = {}
            for step in ops:
                if step[0] == "admit":
                    before = guard.snapshot()
                    result = guard.admit(key, now, model=str(step[1]), price=PRICE, ttl=120)
                    if result.outcome == "admitted":
                        leases.append(str(result.lease_id))
                    else:
                        assert result.code == "budget_exceeded"
                        assert guard.snapshot() == before  # a refusal changes nothing
                elif step[0] == "settle" and leases:
                    lease = leases[int(str(step[1])) % len(leases)]
                    used = step[2]
                    outcome = guard.settle(key, lease, now, ran=bool(step[3]),
                                           used_ms=used if used is None else int(str(used)))
                    if lease in charged:  # a duplicate: never charged twice
                        assert not outcome.applied
                        assert outcome.charged_gpu_ms == charged[lease]
                    else:
                        assert outcome.applied
                        charged[lease] = int(outcome.charged_gpu_ms or 0)
                elif step[0] == "tick":
                    now += float(str(step[1]))
                    latest = max(latest, now)
                    guard.core.storage.atomic(
                        lambda: expire(guard.core.storage.query, key, now))  # noqa: B023
                _check(guard, key, latest)  # the guard's budget clock never runs back
            # In the end every reservation is settled or (past its expiry) expired.
            later = latest + 10_000
            guard.core.storage.atomic(lambda: expire(guard.core.storage.query, key, later))
            states = {row[0] for row in guard.core.storage.query(
                "SELECT state FROM reservations")}
            assert states <= {"settled", "expired"}
        finally:
            loop.close()


def test_many_concurrent_gates_never_overspend(tmp_path: Path) -> None:
    """Eight 'gate processes' (own connections) hammer one key: the write lock serialises
    decisions, so exactly limit / worst-case calls are admitted and nothing more."""
    loop = asyncio.new_event_loop()
    main = Guard.open(tmp_path / "keys.db", loop)
    budget = BudgetSpec("day", "day", limit_gpu_ms=50 * 700)
    key = main.new_key((budget,), max_call_gpu_ms=700)
    admitted: list[str] = []
    lock = threading.Lock()

    def gate() -> None:
        own_loop = asyncio.new_event_loop()
        own = Guard.open(tmp_path / "keys.db", own_loop)
        own.secrets = dict(main.secrets)
        for _ in range(20):
            result = own.admit(key, T0 + 1)
            if result.outcome == "admitted":
                with lock:
                    admitted.append(str(result.lease_id))
            else:
                assert result.code == "budget_exceeded"
        own_loop.close()

    threads = [threading.Thread(target=gate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 50
    assert main.committed(key, budget, T0 + 2) == (50 * 700, 0)
    for lease in admitted:
        main.settle(key, lease, T0 + 3, used_ms=700)
    assert main.admit(key, T0 + 4).code == "budget_exceeded"
    ledger_check(main)
    loop.close()


ACCOUNT_CAP = BudgetSpec("acct", "day", limit_gpu_ms=8_000, limit_micros=20_000,
                         chunk_gpu_ms=1_500)
account_op = st.tuples(st.integers(0, 3), st.sampled_from(["admit", "settle", "tick"]),
                       st.integers(0, 2_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(account_op, max_size=50))
def test_account_cap_is_exact_across_keys(ops: list[tuple[int, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        loop = asyncio.new_event_loop()
        try:
            guard = Guard.open(Path(tmp) / "keys.db", loop)
            keys = [guard.new_key(max_call_gpu_ms=700) for _ in range(4)]
            open_leases: dict[str, list[str]] = {key: [] for key in keys}
            now = T0
            for index, action, amount in ops:
                key = keys[index]
                if action == "admit":
                    result = guard.admit(key, now, price=PRICE, account=(ACCOUNT_CAP,))
                    if result.outcome == "admitted":
                        open_leases[key].append(str(result.lease_id))
                elif action == "settle" and open_leases[key]:
                    guard.settle(key, open_leases[key].pop(0), now, used_ms=amount)
                elif action == "tick":
                    now += amount * 10.0
                granted = guard.account.granted(ACCOUNT_CAP, now)
                assert granted[0] <= 8_000 and granted[1] <= 20_000
                spent_ms = spent_micros = 0
                for each in keys:
                    usage = key_usage_of(guard, each, now)
                    spent_ms += usage[0]
                    spent_micros += usage[1]
                assert spent_ms <= granted[0] and spent_micros <= granted[1]
                ledger_check(guard)
        finally:
            loop.close()


def key_usage_of(guard: Guard, key: str, now: float) -> tuple[int, int]:
    status = budget_status(guard.core.storage.query, key, ACCOUNT_CAP, now,
                           "account:" + ACCOUNT_CAP.budget_id)
    return status.committed_gpu_ms, status.committed_micros
