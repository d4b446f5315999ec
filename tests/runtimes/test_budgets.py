"""Budgets, alerts and the kill switch end to end on both runtimes: SDK → gate → real RunPod
worker, keys made through the signed admin API, alerts posted to a real webhook receiver
(after the response: a background task locally, ctx.waitUntil at the edge)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.budget_scenarios import LoadResult, spend_to_the_budget
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from typer.testing import CliRunner

from gpushield import AsyncClient
from gpushield.admin import AdminClient
from gpushield.cli.demo import MODEL, OTHER_MODEL
from gpushield.cli.main import app
from gpushield.devtools.runpod_worker import RunningWorker
from gpushield.errors import APIError, BudgetExceeded
from gpushield_edge.admin.service import NewKey
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.keyguard.budget import BudgetSpec
from gpushield_edge.runtime_local.app import ADMIN_SECRET_ENV

from .conftest import GateUnderTest, gate_document

pytestmark = pytest.mark.slow
# Each call costs its minimum: 1 µ per GPU-second is far below it for any call under 1000 s.
MIN_MICROS = 1000
ACCOUNT_CAP = 30 * MIN_MICROS


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


# A model only the account-cap test calls, so the other tests' spend never counts against it.
BATCH_MODEL = "batch"


@pytest.fixture(scope="module")
def gate_overrides(receiver: WebhookReceiver, worker: RunningWorker) -> dict[str, Any]:
    return {
        "models": {BATCH_MODEL: gate_document(worker.url)["models"][MODEL]},
        "prices": {"backends": {"runpod": {"micros_per_gpu_s": 1, "min_micros": MIN_MICROS}},
},
        "alerts": {"webhooks": [{"url": receiver.url + "/slack", "format": "slack"},
                                {"url": receiver.url + "/generic", "format": "generic"}],
                   "max_attempts": 3, "backoff_s": 0.05},
        "anomaly": {"max_models_per_hour": 1},
        # An account-wide cap over every key's calls of BATCH_MODEL, leased in chunks.
        "budgets": {"account": [{"budget_id": "account-day", "unit": "day", "model": BATCH_MODEL,
                                 "limit_micros": ACCOUNT_CAP, "chunk_micros": 4 * MIN_MICROS}]},
    }


def test_64_clients_spend_exactly_the_money_budget(
    gate: GateUnderTest, worker: RunningWorker, receiver: WebhookReceiver,
) -> None:
    budget = BudgetSpec("day", "day", limit_micros=40 * MIN_MICROS)
    runs_before = worker.run_count()
    seen_before = len(receiver.received)
    result: LoadResult = gate.admin(lambda admin: spend_to_the_budget(
        gate.url, admin, MODEL, budget, clients=64, max_call_gpu_ms=10_000))
    print(f"\nload test ({gate.runtime}, money budget): {result.line()}")
    assert result.spent == result.limit == 40 * MIN_MICROS
    assert result.admitted == 40
    assert result.open_reservations == 0 and result.other_errors == 0
    assert worker.run_count() - runs_before == 40  # no refused call ever reached the GPU
    # 50/80/100% alerts, once each, in both forms, sent after the responses.
    receiver.wait_for(seen_before + 6, timeout_s=10)
    generic = sorted(
        item["body"]["event"]["threshold"] for item in receiver.received[seen_before:]
        if item["path"] == "/generic" and item["body"]["event"]["kind"] == "budget_threshold")
    assert generic == [50, 80, 100]
    slack = [item["body"]["text"] for item in receiver.received[seen_before:]
             if item["path"] == "/slack"]
    assert any("100%" in text for text in slack)


def test_64_clients_never_overspend_a_gpu_time_budget(gate: GateUnderTest) -> None:
    cap = 1000
    budget = BudgetSpec("gpu", "hour", rolling=True, limit_gpu_ms=12 * cap)
    result: LoadResult = gate.admin(lambda admin: spend_to_the_budget(
        gate.url, admin, MODEL, budget, clients=64, max_call_gpu_ms=cap, sleep_ms=30,
        give_up_after=20))
    print(f"\nload test ({gate.runtime}, GPU-time budget): {result.line()}")
    # Settled at measured time (the local worker reports none): far more than 12 calls fit,
    # spend never passes the limit, and it stops only when a worst-case call no longer fits.
    assert result.admitted > 12
    assert result.limit - cap < result.spent <= result.limit
    assert result.open_reservations == 0 and result.other_errors == 0


def test_anomaly_quarantines_alerts_and_admin_restores(
    gate: GateUnderTest, receiver: WebhookReceiver,
) -> None:
    async def main(admin: AdminClient) -> tuple[list[str], str]:
        created = await admin.create(NewKey(
            scopes=(MODEL, OTHER_MODEL), label="leaky",
            limits=KeyLimits(rate_per_minute=6000, burst=100)))
        key_id, secret = created.record.key_id, created.secret
        outcomes: list[str] = []
        async with AsyncClient(gate.url, key_id, secret, max_retries=0) as client:
            for model in (MODEL, OTHER_MODEL, MODEL):  # the second model trips it
                try:
                    await client.infer(model, {"prompt": "Hello there. Again."})
                    outcomes.append("ok")
                except APIError as error:
                    outcomes.append(error.code)
            assert (await admin.get(key_id)).record.status == "quarantined"
            await admin.set_status(key_id, "active")  # `gpushield keys restore`
            await client.infer(MODEL, {"prompt": "Back again. Fine."})
            outcomes.append("ok")
        return outcomes, key_id

    seen_before = len(receiver.received)
    outcomes, key_id = gate.admin(main)
    assert outcomes == ["ok", "ok", "key_quarantined", "ok"]
    receiver.wait_for(seen_before + 2, timeout_s=10)
    quarantine = [item["body"]["event"] for item in receiver.received[seen_before:]
                  if item["path"] == "/generic"
                  and item["body"]["event"]["key_id"] == key_id
                  and item["body"]["event"]["kind"] == "key_quarantined"]
    assert [e["reason"] for e in quarantine] == ["many_models"]
    mine = [e for e in gate.audit_events() if e.get("key_id") == key_id
            or e.get("extra", {}).get("admin_target") == key_id]
    assert any(e.get("extra", {}).get("quarantined") == "many_models" for e in mine)
    assert any(e.get("extra", {}).get("admin_action") == "status:active" for e in mine)
    assert gate.admin_secret not in gate.audit_text()


def test_usage_cli_reads_the_gate_remotely(gate: GateUnderTest, tmp_path: Path) -> None:
    gate.admin(lambda admin: admin.create(NewKey(
        scopes=(MODEL,), label="remote usage",
        budgets=(BudgetSpec("day", "day", limit_gpu_ms=60_000),))))
    runner = CliRunner()
    env = {ADMIN_SECRET_ENV: gate.admin_secret}
    table = runner.invoke(app, ["usage", "--gate", gate.url], env=env)
    assert table.exit_code == 0, table.output
    assert "gpushield usage" in table.output and "remote usage" in table.output
    png = tmp_path / "remote.png"
    plotted = runner.invoke(app, ["usage", "--gate", gate.url, "--plot", str(png)], env=env)
    assert plotted.exit_code == 0, plotted.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_budget_refusal_reaches_the_sdk_as_a_typed_402(gate: GateUnderTest) -> None:
    key = gate.new_key()
    gate.admin(lambda admin: admin.set_budgets(
        key[0], (BudgetSpec("day", "day", limit_micros=MIN_MICROS - 1),)))

    async def call() -> BudgetExceeded:
        async with AsyncClient(gate.url, *key, max_retries=0) as client:
            with pytest.raises(BudgetExceeded) as caught:
                await client.infer(MODEL, {"prompt": "Too dear. Sorry."})
            return caught.value

    refused = asyncio.run(call())
    assert (refused.status, refused.code) == (402, "budget_exceeded")


def test_two_keys_with_64_clients_never_pass_the_account_cap(
    gate: GateUnderTest, worker: RunningWorker,
) -> None:
    """No key budget at all: only the account cap, which two keys' guards lease in chunks
    from the account guard (a third Durable Object at the edge). Together they spend it
    exactly, and no refused call reaches the GPU."""
    runs_before = worker.run_count()
    keys = [gate.new_key(KeyLimits(rate_per_minute=60_000, burst=1000, max_concurrency=64),
                         scopes=(BATCH_MODEL,)) for _ in range(2)]
    admitted = 0

    async def caller(client: AsyncClient, index: int) -> None:
        nonlocal admitted
        refusals = 0
        while refusals < 5:
            try:
                await client.infer(BATCH_MODEL, {"prompt": f"Caller {index}. Two.",
                                                 "sleep_ms": 20})
            except BudgetExceeded:
                refusals += 1
                await asyncio.sleep(0.02)
                continue
            admitted += 1
            refusals = 0

    async def main() -> list[dict[str, Any]]:
        async with AsyncClient(gate.url, *keys[0], max_retries=0, timeout=60) as first, \
                AsyncClient(gate.url, *keys[1], max_retries=0, timeout=60) as second:
            await asyncio.gather(*[caller(first if i % 2 else second, i) for i in range(64)])
        async with AdminClient(gate.url, gate.admin_secret) as admin:
            return [await admin.usage(key_id) for key_id, _ in keys]

    usages = asyncio.run(main())
    spent = sum(total["micros"] for usage in usages
                for state, total in usage["totals"].items() if state != "open")
    assert all(not usage["open_reservations"] for usage in usages)
    print(f"\naccount cap ({gate.runtime}): 64 clients on 2 keys, {admitted} calls admitted, "
          f"spent {spent} of {ACCOUNT_CAP} micro-units")
    assert spent == ACCOUNT_CAP
    assert admitted == ACCOUNT_CAP // MIN_MICROS
    assert worker.run_count() - runs_before == admitted
