"""Reserve → dispatch → settle in the real key guard, with time under the test's control."""

from __future__ import annotations

import pytest

from gpushield_edge.keyguard.budget import BudgetSpec, Price, expire

from .guardkit import MODEL, T0, Guard, ledger_check

DAY_MS = BudgetSpec("day", "day", limit_gpu_ms=5000)
DAY_MONEY = BudgetSpec("money", "day", limit_micros=10_000)


def test_price_rounds_up_and_applies_the_minimum() -> None:
    price = Price(micros_per_gpu_s=400, min_micros=100)
    assert price.charge(0) == 100
    assert price.charge(1) == 100  # 0.4 µ rounds up to 1, below the minimum
    assert price.charge(1000) == 400
    assert price.charge(1001) == 401


def test_worst_case_is_reserved_and_refusal_changes_nothing(guard: Guard) -> None:
    key = guard.new_key((DAY_MS,), max_call_gpu_ms=2000)
    first = guard.admit(key, T0)
    second = guard.admit(key, T0 + 1)
    assert first.outcome == second.outcome == "admitted"
    assert first.reserved_gpu_ms == 2000
    before = guard.snapshot()
    third = guard.admit(key, T0 + 2)  # 4000 reserved + 2000 > 5000
    assert (third.outcome, third.code) == ("refused", "budget_exceeded")
    assert third.budget["budget"] == "day" and third.budget["scope"] == "key"
    assert third.budget["resets_in_s"] == 86400 - 2
    assert guard.snapshot() == before


def test_settle_releases_the_difference(guard: Guard) -> None:
    key = guard.new_key((DAY_MS,), max_call_gpu_ms=2000)
    leases = [guard.admit(key, T0 + i).lease_id for i in range(2)]
    assert guard.admit(key, T0 + 3).outcome == "refused"
    result = guard.settle(key, str(leases[0]), T0 + 4, used_ms=300)
    assert (result.applied, result.charged_gpu_ms) == (True, 300)
    assert guard.committed(key, DAY_MS, T0 + 5) == (2300, 0)
    assert guard.admit(key, T0 + 5).outcome == "admitted"  # 2300 + 2000 <= 5000
    ledger_check(guard)


@pytest.mark.parametrize(("ran", "used", "charged"), [
    (True, 10**12, 2000),  # absurd: never more than reserved
    (True, -5, 0),  # negative: nothing
    (True, None, 2000),  # unknown but may have run: the worst case
    (False, 1500, 0),  # never dispatched: nothing, whatever was reported
])
def test_absurd_and_unknown_execution_times(guard: Guard, ran: bool, used: int | None,
                                            charged: int) -> None:
    key = guard.new_key((DAY_MS,), max_call_gpu_ms=2000)
    lease = str(guard.admit(key, T0).lease_id)
    assert guard.settle(key, lease, T0 + 1, ran=ran, used_ms=used).charged_gpu_ms == charged
    assert guard.committed(key, DAY_MS, T0 + 1) == (charged, 0)
    ledger_check(guard)


def test_duplicate_settle_charges_once(guard: Guard) -> None:
    key = guard.new_key((DAY_MONEY,), max_call_gpu_ms=2000)
    price = Price(micros_per_gpu_s=1000, min_micros=50)
    lease = str(guard.admit(key, T0, price=price).lease_id)
    first = guard.settle(key, lease, T0 + 1, used_ms=700)
    second = guard.settle(key, lease, T0 + 2, used_ms=100)
    assert (first.applied, first.charged_micros) == (True, 700)
    assert (second.applied, second.charged_micros) == (False, 700)
    assert guard.committed(key, DAY_MONEY, T0 + 3) == (700, 700)


def test_gate_crash_between_reserve_and_settle(guard: Guard) -> None:
    """The gate never settles: the reservation expires keeping its worst case, its lease
    frees the concurrency slot, and a late settle trues it down exactly once."""
    key = guard.new_key((DAY_MS,), max_call_gpu_ms=2000, max_concurrency=1)
    lease = str(guard.admit(key, T0, ttl=30).lease_id)
    assert guard.admit(key, T0 + 1).code == "concurrency_limited"
    later = T0 + 31
    assert guard.admit(key, later).outcome == "admitted"  # the lease freed itself
    guard.core.storage.atomic(lambda: expire(guard.core.storage.query, key, later))
    state = guard.rows("reservations")
    assert sorted(row[9] for row in state) == ["expired", "open"]
    assert guard.committed(key, DAY_MS, later) == (4000, 0)
    assert guard.settle(key, lease, later + 5, used_ms=250).charged_gpu_ms == 250
    assert guard.settle(key, lease, later + 6, used_ms=1999).applied is False
    assert guard.committed(key, DAY_MS, later + 7) == (2250, 0)
    ledger_check(guard)


def test_idempotent_replay_is_not_charged_again(guard: Guard) -> None:
    key = guard.new_key((DAY_MS,), max_call_gpu_ms=1000)
    lease = str(guard.admit(key, T0, idem="job-1").lease_id)
    guard.settle(key, lease, T0 + 1, used_ms=400, idem="job-1")
    for i in range(5):
        assert guard.admit(key, T0 + 2 + i, idem="job-1").outcome == "replay"
    assert guard.committed(key, DAY_MS, T0 + 10) == (400, 0)


def test_retry_after_a_call_that_never_ran_is_charged_once(guard: Guard) -> None:
    key = guard.new_key((DAY_MS,), max_call_gpu_ms=1000)
    lease = str(guard.admit(key, T0, idem="job-2").lease_id)
    guard.settle(key, lease, T0 + 1, ran=False, idem="job-2")  # connect refused: retryable
    lease = str(guard.admit(key, T0 + 2, idem="job-2").lease_id)
    guard.settle(key, lease, T0 + 3, used_ms=600, idem="job-2")
    assert guard.admit(key, T0 + 4, idem="job-2").outcome == "replay"
    assert guard.committed(key, DAY_MS, T0 + 5) == (600, 0)


def test_calendar_budget_resets_with_the_period(guard: Guard) -> None:
    key = guard.new_key((DAY_MS,), max_call_gpu_ms=5000)
    guard.settle(key, str(guard.admit(key, T0).lease_id), T0 + 1, used_ms=5000)
    assert guard.admit(key, T0 + 86399).code == "budget_exceeded"
    assert guard.admit(key, T0 + 86400).outcome == "admitted"


def test_rolling_budget_counts_the_last_window_and_clock_jumps_back(guard: Guard) -> None:
    rolling = BudgetSpec("r", "hour", rolling=True, limit_gpu_ms=3000)
    key = guard.new_key((rolling,), max_call_gpu_ms=1000)
    for i in range(3):
        guard.settle(key, str(guard.admit(key, T0 + i * 600).lease_id), T0 + i * 600 + 1,
                     used_ms=1000)
    assert guard.admit(key, T0 + 1800).code == "budget_exceeded"
    # The clock jumps back an hour: later charges still count (no upper bound on buckets).
    assert guard.admit(key, T0 - 3600).code == "budget_exceeded"
    # A bit over an hour after the first charge (plus one bucket), it has rolled out.
    assert guard.admit(key, T0 + 3600 + 61).outcome == "admitted"


def test_per_model_budget_within_a_key(guard: Guard) -> None:
    big = BudgetSpec("big", "day", limit_gpu_ms=1000, model="big-model")
    key = guard.new_key((big,), max_call_gpu_ms=1000)
    guard.settle(key, str(guard.admit(key, T0, model="big-model").lease_id), T0, used_ms=1000)
    assert guard.admit(key, T0 + 1, model="big-model").code == "budget_exceeded"
    assert guard.admit(key, T0 + 2, model=MODEL).outcome == "admitted"


def test_both_money_and_time_limits_apply(guard: Guard) -> None:
    both = BudgetSpec("both", "month", limit_gpu_ms=10_000, limit_micros=1000)
    key = guard.new_key((both,), max_call_gpu_ms=1000)
    price = Price(micros_per_gpu_s=500)  # worst case 500 µ: two calls fit the money limit
    assert guard.admit(key, T0, price=price).outcome == "admitted"
    assert guard.admit(key, T0, price=price).outcome == "admitted"
    assert guard.admit(key, T0, price=price).code == "budget_exceeded"
