"""The secured path end to end — SDK → gate → real RunPod worker — on both runtimes."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gpushield import AsyncClient, Client
from gpushield.admin import AdminClient
from gpushield.cli.demo import MODEL, OTHER_MODEL
from gpushield.devtools.runpod_worker import RunningWorker
from gpushield.devtools.scenarios import ScenarioEnv, run_scenarios, scenarios
from gpushield.errors import BackendError, RateLimited
from gpushield_edge.keyguard import KeyLimits

from .conftest import GateUnderTest

pytestmark = pytest.mark.slow


def test_every_demo_row_behaves_as_documented(gate: GateUnderTest, worker: RunningWorker) -> None:
    keys = gate.demo_keys()
    env = ScenarioEnv(gate.url, MODEL, OTHER_MODEL, keys, worker.run_count)
    rows = run_scenarios(env)
    env.http.close()
    assert len(rows) == len(scenarios(keys.rate_burst))
    wrong = [(row.name, row.outcome, row.runs, row.expected) for row in rows if not row.ok]
    assert wrong == []


def test_async_client_calls_through_the_gate(gate: GateUnderTest, worker: RunningWorker) -> None:
    keys = gate.demo_keys()
    before = worker.run_count()

    async def main() -> list[str]:
        async with AsyncClient(gate.url, *keys.main) as client:
            results = await asyncio.gather(*[
                client.infer(MODEL, {"prompt": f"Text number {i}. It has two sentences."})
                for i in range(4)
            ])
        return [result.status for result in results]

    assert asyncio.run(main()) == ["COMPLETED"] * 4
    assert worker.run_count() - before == 4


def test_worker_failure_is_scrubbed_and_replayed_not_rerun(
    gate: GateUnderTest, worker: RunningWorker
) -> None:
    keys = gate.demo_keys()
    before = worker.run_count()
    with Client(gate.url, *keys.main, max_retries=3) as client:
        for _ in range(2):
            with pytest.raises(BackendError) as caught:
                client.infer(MODEL, {"prompt": "x", "fail": "disk on fire"},
                             idempotency_key="fail-once")
            assert caught.value.code == "backend_failed"
            assert caught.value.status == 502
            text = str(caught.value.problem)
            assert "Traceback" not in text and "disk on fire" not in text
    # The SDK retried the 502s with the same key and the gate replayed the first answer:
    # the worker ran the failing job exactly once.
    assert worker.run_count() - before == 1


def test_concurrency_cap_is_exact_under_parallel_load(
    gate: GateUnderTest, worker: RunningWorker
) -> None:
    """Two long calls hold both slots (seen through the admin API, not assumed after a pause);
    four more sent while they run are all refused, and the two then complete."""
    key = gate.new_key(KeyLimits(rate_per_minute=6000, burst=100, max_concurrency=2))
    before = worker.run_count()

    async def one(client: AsyncClient, i: int, sleep_ms: int) -> str:
        try:
            await client.infer(MODEL, {"prompt": f"call {i}", "sleep_ms": sleep_ms})
        except RateLimited as error:
            return error.code
        return "ok"

    async def main() -> tuple[list[str], list[str], int]:
        async with AsyncClient(gate.url, *key, max_retries=0) as client, \
                AdminClient(gate.url, gate.admin_secret) as admin:
            # Long enough that the four below are answered while both still run.
            holding = [asyncio.create_task(one(client, i, 4000)) for i in range(2)]
            deadline = time.monotonic() + 30
            while (await admin.get(key[0])).in_flight < 2:
                assert not any(task.done() for task in holding), "a long call ended early"
                assert time.monotonic() < deadline, "the two long calls never were in flight"
                await asyncio.sleep(0.05)
            refused = await asyncio.gather(*[one(client, i, 0) for i in range(2, 6)])
            still_in_flight = (await admin.get(key[0])).in_flight
            completed = await asyncio.gather(*holding)
        return list(completed), list(refused), still_in_flight

    completed, refused, still_in_flight = asyncio.run(main())
    assert refused == ["concurrency_limited"] * 4
    assert still_in_flight == 2  # the refusals were made while both slots were taken
    assert completed == ["ok", "ok"]
    assert worker.run_count() - before == 2


def test_audit_events_are_written_without_secrets(gate: GateUnderTest) -> None:
    keys = gate.demo_keys()
    with Client(gate.url, *keys.main) as client:
        result = client.infer(MODEL, {"prompt": "Audit me. Quietly."})
    events = [e for e in gate.audit_events() if e["request_id"] == result.request_id]
    assert len(events) == 1
    event = events[0]
    assert (event["decision"], event["backend_ran"], event["key_id"]) == (
        "allow", True, keys.main[0])
    assert event["backend_job_id"] == result.id
    assert event["client_ip"] == "127.0.0.1"
    if gate.runtime == "workers":
        # From `request.cf.country` (the harness plays Cloudflare's edge as country "XX").
        assert event["extra"]["country"] == "XX"
    text = gate.audit_text()
    assert keys.main[1] not in text
    assert "Audit me" not in text


def test_oversized_upload_is_refused_unread_and_audited(gate: GateUnderTest) -> None:
    with httpx.Client(trust_env=False) as client:
        response = client.post(f"{gate.url}/v1/models/{MODEL}/infer", content=b"x" * 2_000_000,
                               headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    events = [e for e in gate.audit_events()
              if e["request_id"] == response.headers["x-request-id"]]
    assert [e["code"] for e in events] == ["body_too_large"]
