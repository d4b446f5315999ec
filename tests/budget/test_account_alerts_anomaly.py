"""Account cap across keys (chunk leasing), alert thresholds, and the anomaly kill switch."""

from __future__ import annotations

import random

from gpushield_edge.anomaly import AnomalyPolicy
from gpushield_edge.keyguard.budget import BudgetSpec, Price
from gpushield_edge.keyguard.settlement import SettlePolicy
from gpushield_edge.keyguard.usage import key_usage, release_unused

from .guardkit import T0, Guard, ledger_check

ACCOUNT = BudgetSpec("month", "month", limit_gpu_ms=20_000, chunk_gpu_ms=3_000)


def test_account_cap_holds_across_keys_and_chunks_go_back(guard: Guard) -> None:
    keys = [guard.new_key(max_call_gpu_ms=1000) for _ in range(5)]
    rng = random.Random(6)
    admitted: list[tuple[str, str]] = []
    refused = 0
    for i in range(60):
        key = rng.choice(keys)
        result = guard.admit(key, T0 + i, account=(ACCOUNT,))
        if result.outcome == "admitted":
            admitted.append((key, str(result.lease_id)))
        else:
            assert result.code == "budget_exceeded" and result.budget["scope"] == "account"
            assert "chunk" not in result.budget  # internal detail never leaves the guard
            refused += 1
    granted_ms, _ = guard.account.granted(ACCOUNT, T0)
    assert granted_ms <= ACCOUNT.limit_gpu_ms
    # Chunks are leased whole, so some may sit unused in idle keys: never more than the cap.
    assert len(admitted) * 1000 <= ACCOUNT.limit_gpu_ms
    assert refused > 0
    # Settle everything at 400 ms and return idle chunks: the account gets the rest back.
    for key, lease in admitted:
        guard.settle(key, lease, T0 + 100, used_ms=400)
    for key in keys:
        for spec, bucket, ms, micros in release_unused(guard.core.storage, key, (ACCOUNT,),
                                                       T0 + 101):
            guard.run(guard.account.give_back(key, spec.to_dict(), bucket, ms, micros,
                                              T0 + 101))
    granted_after, _ = guard.account.granted(ACCOUNT, T0 + 101)
    assert granted_after == len(admitted) * 400
    # The freed budget is usable by any key again.
    assert guard.admit(keys[0], T0 + 102, account=(ACCOUNT,)).outcome == "admitted"
    ledger_check(guard)


def test_account_grant_is_exact_at_the_edge_of_the_cap(guard: Guard) -> None:
    cap = BudgetSpec("day", "day", limit_gpu_ms=2_500, chunk_gpu_ms=2_000)
    a, b = guard.new_key(max_call_gpu_ms=1000), guard.new_key(max_call_gpu_ms=1000)
    assert guard.admit(a, T0, account=(cap,)).outcome == "admitted"  # a holds 2000
    # 500 left < 1000: the account reclaims a's uncommitted 1000 and grants b 1500.
    assert guard.admit(b, T0, account=(cap,)).outcome == "admitted"
    # a needs 1000 more: 0 left, b can spare only 500 — refused, nothing overcommitted.
    assert guard.admit(a, T0, account=(cap,)).code == "budget_exceeded"
    granted_ms, _ = guard.account.granted(cap, T0)
    assert granted_ms <= 2_500
    ledger_check(guard)


def test_idle_chunks_are_reclaimed_when_another_key_needs_them(guard: Guard) -> None:
    cap = BudgetSpec("day", "day", limit_micros=10_000, chunk_micros=3_000)
    price = Price(micros_per_gpu_s=1000)  # a 1 s call reserves 1000 µ
    keys = [guard.new_key(max_call_gpu_ms=1000) for _ in range(4)]
    held = []
    for key in keys[:3]:  # three keys take a 3000 µ chunk each and use a little of it
        lease = str(guard.admit(key, T0, account=(cap,), price=price).lease_id)
        held.append((key, lease))
    guard.settle(*held[0], T0 + 1, used_ms=100)
    guard.settle(*held[1], T0 + 1, used_ms=100)
    # 9000 handed out, 1000 left: key 4 gets it; its next calls need the idle spare of keys
    # 1 and 2 (2900 each), but never key 3's in-flight reservation.
    fourth = keys[3]
    admitted = 0
    while guard.admit(fourth, T0 + 2 + admitted, account=(cap,),
                      price=price).outcome == "admitted":
        admitted += 1
    # Committed elsewhere: 100 + 100 settled, 1000 in flight at key 3: key 4 fits 8 calls.
    assert admitted == 8
    _, handed = guard.account.granted(cap, T0 + 20)
    assert 100 + 100 + 1000 + 8 * 1000 <= handed <= cap.limit_micros
    ledger_check(guard)


def test_thresholds_alert_once_per_period(guard: Guard) -> None:
    day = BudgetSpec("day", "day", limit_gpu_ms=10_000)
    key = guard.new_key((day,), max_call_gpu_ms=2000)
    policy = SettlePolicy(thresholds=(50, 80, 100), anomaly=AnomalyPolicy(enabled=False))
    sent: list[int] = []
    for i in range(6):
        lease = str(guard.admit(key, T0 + i).lease_id)
        result = guard.settle(key, lease, T0 + i, used_ms=1800, policy=policy)
        sent += [event["threshold"] for event in result.alerts]
    # 5400 → 50%; 7200 → 80%; 9000: a 2000 ms call no longer fits → 100%.
    assert sent == [50, 80, 100]
    usage = key_usage(guard.core.storage, key, T0 + 10)
    assert usage["budgets"][0]["committed_gpu_ms"] == 9000
    # The next day starts a new period: the thresholds alert again.
    next_day = T0 + 86400
    sent = []
    for i in range(3):
        lease = str(guard.admit(key, next_day + i).lease_id)
        result = guard.settle(key, lease, next_day + i, used_ms=2000, policy=policy)
        sent += [event["threshold"] for event in result.alerts]
    assert sent == [50]


def test_spend_velocity_quarantines_and_restore_does_not_retrigger(guard: Guard) -> None:
    key = guard.new_key(max_call_gpu_ms=60_000)
    policy = SettlePolicy(thresholds=(), anomaly=AnomalyPolicy(
        bucket_s=60, alpha=0.2, z=4.0, warmup_buckets=10, min_gpu_ms=20_000,
        max_models_per_hour=0))
    rng = random.Random(1)
    now = T0
    for _ in range(30):  # a steady baseline: about 2 s of GPU per minute
        lease = str(guard.admit(key, now).lease_id)
        assert guard.settle(key, lease, now, used_ms=rng.randint(1500, 2500),
                            policy=policy).quarantined is None
        now += 60
    reason = None
    for i in range(10):  # then flat out: 60 s calls back to back
        lease = str(guard.admit(key, now + i).lease_id)
        reason = guard.settle(key, lease, now + i, used_ms=60_000, policy=policy).quarantined
        if reason:
            break
    assert reason == "spend_velocity"
    assert guard.core.get_key(key).status == "quarantined"
    assert guard.admit(key, now + 20).code == "key_quarantined"
    guard.core.set_status(key, "active")  # `gpushield keys restore`
    lease = str(guard.admit(key, now + 21).lease_id)
    assert guard.settle(key, lease, now + 21, used_ms=2000, policy=policy).quarantined is None


def test_many_models_from_one_key_quarantines(guard: Guard) -> None:
    key = guard.new_key(max_call_gpu_ms=1000)
    policy = SettlePolicy(thresholds=(), anomaly=AnomalyPolicy(max_models_per_hour=3))
    outcomes = []
    for i, model in enumerate(["a", "b", "c", "d"]):
        lease = str(guard.admit(key, T0 + i, model=model).lease_id)
        result = guard.settle(key, lease, T0 + i, used_ms=10, policy=policy)
        outcomes.append(result.quarantined)
    assert outcomes == [None, None, None, "many_models"]
    assert [e["kind"] for e in result.alerts] == ["key_quarantined"]
    assert guard.admit(key, T0 + 10, model="a").code == "key_quarantined"


def test_restored_key_is_not_requarantined_for_what_it_already_did(guard: Guard) -> None:
    key = guard.new_key(max_call_gpu_ms=1000)
    policy = SettlePolicy(thresholds=(), anomaly=AnomalyPolicy(max_models_per_hour=1))
    for i, model in enumerate(["a", "b"]):
        lease = str(guard.admit(key, T0 + i, model=model).lease_id)
        result = guard.settle(key, lease, T0 + i, used_ms=10, policy=policy)
    assert result.quarantined == "many_models"
    guard.core.set_status(key, "active")
    for i, model in enumerate(["a", "a"]):
        lease = str(guard.admit(key, T0 + 5 + i, model=model).lease_id)
        assert guard.settle(key, lease, T0 + 5 + i, used_ms=10, policy=policy).quarantined \
            is None
    lease = str(guard.admit(key, T0 + 9, model="b").lease_id)
    assert guard.settle(key, lease, T0 + 9, used_ms=10, policy=policy).quarantined == \
        "many_models"


def test_a_new_country_after_an_established_history_quarantines(guard: Guard) -> None:
    key = guard.new_key(max_call_gpu_ms=1000)
    policy = SettlePolicy(thresholds=(), anomaly=AnomalyPolicy(new_country_after_calls=5))
    reasons = []
    for i, country in enumerate(["FR", "DE", "FR", "FR", "DE", "FR", "KP"]):
        lease = str(guard.admit(key, T0 + i, country=country).lease_id)
        reasons.append(guard.settle(key, lease, T0 + i, used_ms=10, policy=policy).quarantined)
    # DE on the second call is new too, but there was no history yet to break.
    assert reasons == [None] * 6 + ["new_country"]
    guard.core.set_status(key, "active")  # the admin vouches for it: KP is known now
    lease = str(guard.admit(key, T0 + 10, country="KP").lease_id)
    assert guard.settle(key, lease, T0 + 10, used_ms=10, policy=policy).quarantined is None
