"""Budgets, alerts and the kill switch end to end: SDK → gate (uvicorn) → real RunPod worker,
keys made through the signed admin API, alerts posted to a real webhook receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from typer.testing import CliRunner

from gpushield import AsyncClient
from gpushield.admin import AdminClient
from gpushield.cli.demo import MODEL, OTHER_MODEL, demo_config
from gpushield.cli.main import app
from gpushield.devtools.gate_server import RunningGate, serve_gate
from gpushield.devtools.runpod_worker import RunningWorker, start_runpod_worker
from gpushield.errors import APIError
from gpushield_edge.admin.service import NewKey
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.keyguard.budget import BudgetSpec
from gpushield_edge.runtime_local.app import ADMIN_SECRET_ENV
from gpushield_wire import credentials

from .budget_scenarios import LoadResult, spend_to_the_budget

pytestmark = pytest.mark.slow
# Each call costs its minimum: 1 µ per GPU-second is far below it for any call under 1000 s.
MIN_MICROS = 1000


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with start_runpod_worker(tmp_path_factory.mktemp("worker"), hooks=True) as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def admin_secret() -> str:
    return credentials.format_secret(credentials.new_secret())


@pytest.fixture(scope="module")
def gate(worker: RunningWorker, receiver: WebhookReceiver, admin_secret: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGate]:
    document = demo_config(worker.url)
    for name in (MODEL, OTHER_MODEL):
        parameters = document["models"][name]["policy"]["parameters"]  # type: ignore[index]
        parameters["sleep_ms"] = {"type": "integer", "minimum": 0, "maximum": 5000}
    document["prices"] = {"backends": {"runpod": {"micros_per_gpu_s": 1,
                                                  "min_micros": MIN_MICROS}}}
    document["alerts"] = {"webhooks": [
        {"url": receiver.url + "/slack", "format": "slack"},
        {"url": receiver.url + "/generic", "format": "generic"}],
        "max_attempts": 3, "backoff_s": 0.05}
    document["anomaly"] = {"max_models_per_hour": 1}
    with serve_gate(document, tmp_path_factory.mktemp("gate"),
                    environ={ADMIN_SECRET_ENV: admin_secret}) as running:
        yield running


def _alerts(receiver: WebhookReceiver, key_id: str, path: str) -> list[dict[str, object]]:
    return [item["body"]["event"] for item in receiver.received
            if item["path"] == path and item["body"]["event"]["key_id"] == key_id]


def test_64_clients_spend_exactly_the_money_budget(
    gate: RunningGate, worker: RunningWorker, receiver: WebhookReceiver, admin_secret: str,
) -> None:
    budget = BudgetSpec("day", "day", limit_micros=40 * MIN_MICROS)
    runs_before = worker.run_count()

    async def main() -> LoadResult:
        async with AdminClient(gate.url, admin_secret) as admin:
            return await spend_to_the_budget(gate.url, admin, MODEL, budget, clients=64,
                                              max_call_gpu_ms=10_000)

    result = asyncio.run(main())
    print(f"\nload test (money budget): {result.line()}")
    assert result.spent == result.limit == 40 * MIN_MICROS
    assert result.admitted == 40
    assert result.open_reservations == 0 and result.other_errors == 0
    assert worker.run_count() - runs_before == 40  # no refused call ever reached the GPU
    # 50/80/100% alerts, once each, in both forms.
    key_events = []
    receiver.wait_for(len(receiver.received) + 6, timeout_s=5)
    for item in receiver.received:
        event = item["body"].get("event")
        if event and event["kind"] == "budget_threshold" and event["spent_micros"] <= 40_000:
            key_events.append((item["path"], event["threshold"], event["key_id"]))
    generic = sorted(t for path, t, _ in key_events if path == "/generic")
    assert generic == [50, 80, 100]
    slack = [item["body"]["text"] for item in receiver.received if item["path"] == "/slack"]
    assert any("100%" in text for text in slack)


def test_64_clients_never_overspend_a_gpu_time_budget(
    gate: RunningGate, worker: RunningWorker, admin_secret: str,
) -> None:
    cap = 1000
    budget = BudgetSpec("gpu", "hour", rolling=True, limit_gpu_ms=12 * cap)

    async def main() -> LoadResult:
        async with AdminClient(gate.url, admin_secret) as admin:
            return await spend_to_the_budget(gate.url, admin, MODEL, budget, clients=64,
                                              max_call_gpu_ms=cap, sleep_ms=30,
                                              give_up_after=20)

    result = asyncio.run(main())
    print(f"\nload test (GPU-time budget): {result.line()}")
    # Settled at measured time (the local worker reports none): far more than 12 calls fit,
    # spend never passes the limit, and it stops only when a worst-case call no longer fits.
    assert result.admitted > 12
    assert result.limit - cap < result.spent <= result.limit
    assert result.open_reservations == 0


def test_anomaly_quarantines_alerts_and_admin_restores(
    gate: RunningGate, receiver: WebhookReceiver, admin_secret: str,
) -> None:
    async def main() -> tuple[list[str], str]:
        async with AdminClient(gate.url, admin_secret) as admin:
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

    outcomes, key_id = asyncio.run(main())
    assert outcomes == ["ok", "ok", "key_quarantined", "ok"]
    receiver.wait_for(len(receiver.received) + 2, timeout_s=5)
    quarantine = [e for e in _alerts(receiver, key_id, "/generic")
                  if e["kind"] == "key_quarantined"]
    assert [e["reason"] for e in quarantine] == ["many_models"]
    audit = [json.loads(line) for line in
             gate.state.audit_log.read_text(encoding="utf-8").splitlines()]
    mine = [e for e in audit if e.get("key_id") == key_id
            or e.get("extra", {}).get("admin_target") == key_id]
    assert any(e.get("extra", {}).get("quarantined") == "many_models" for e in mine)
    assert any(e.get("extra", {}).get("admin_action") == "status:active" for e in mine)
    text = gate.state.audit_log.read_text(encoding="utf-8")
    assert admin_secret not in text


def test_usage_cli_reads_a_remote_gate(gate: RunningGate, admin_secret: str,
                                       tmp_path: Path) -> None:
    async def make_key() -> None:
        async with AdminClient(gate.url, admin_secret) as admin:
            await admin.create(NewKey(scopes=(MODEL,), label="remote usage", budgets=(
                BudgetSpec("day", "day", limit_gpu_ms=60_000),)))

    asyncio.run(make_key())
    runner = CliRunner()
    env = {ADMIN_SECRET_ENV: admin_secret}
    table = runner.invoke(app, ["usage", "--gate", gate.url], env=env)
    assert table.exit_code == 0, table.output
    assert "gpushield usage" in table.output and "remote usage" in table.output
    png = tmp_path / "remote.png"
    plotted = runner.invoke(app, ["usage", "--gate", gate.url, "--plot", str(png)], env=env)
    assert plotted.exit_code == 0, plotted.output
    assert png.read_bytes()[:4] == b"\x89PNG"
