"""The whole secured path over real HTTP: SDK → local gate (uvicorn) → real RunPod worker.

These are the demo's rows, asserted: each scenario's status, code, and the number of jobs the
worker itself logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpushield import AsyncClient, Client
from gpushield.cli.demo import MODEL, OTHER_MODEL, create_demo_keys, demo_config
from gpushield.devtools.gate_server import RunningGate, serve_gate
from gpushield.devtools.runpod_worker import RunningWorker, start_runpod_worker
from gpushield.devtools.scenarios import Keys, ScenarioEnv, run_scenarios, scenarios
from gpushield.errors import BackendError, RateLimited
from gpushield_edge.admin.service import LocalKeyAdmin
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.runtime_local.clock import SystemClock
from gpushield_wire import algorithms, credentials

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with start_runpod_worker(tmp_path_factory.mktemp("worker"), hooks=True) as running:
        yield running


@pytest.fixture
def gate(worker: RunningWorker, tmp_path: Path) -> Iterator[RunningGate]:
    document = demo_config(worker.url)
    # The worker's test hooks become parameters of this gate's policy, so tests can make the
    # real worker fail or run long through the front door.
    parameters = document["models"][MODEL]["policy"]["parameters"]  # type: ignore[index]
    parameters["fail"] = {"type": "string", "max_length": 40}
    parameters["sleep_ms"] = {"type": "integer", "minimum": 0, "maximum": 5000}
    with serve_gate(document, tmp_path / "gate", environ={}) as running:
        yield running


def demo_keys(gate: RunningGate) -> Keys:
    return asyncio.run(create_demo_keys(LocalKeyAdmin(gate.local.core, SystemClock())))


def test_every_demo_row_behaves_as_documented(gate: RunningGate, worker: RunningWorker) -> None:
    keys = demo_keys(gate)
    env = ScenarioEnv(gate.url, MODEL, OTHER_MODEL, keys, worker.run_count)
    rows = run_scenarios(env)
    env.http.close()
    assert len(rows) == len(scenarios(keys.rate_burst))
    wrong = [(row.name, row.outcome, row.runs, row.expected) for row in rows if not row.ok]
    assert wrong == []


def test_async_client_calls_through_the_gate(gate: RunningGate, worker: RunningWorker) -> None:
    keys = demo_keys(gate)
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
    gate: RunningGate, worker: RunningWorker
) -> None:
    keys = demo_keys(gate)
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
    gate: RunningGate, worker: RunningWorker
) -> None:
    secret = credentials.new_secret()
    record = asyncio.run(gate.local.core.create_key(
        key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
        scopes=(MODEL,), limits=KeyLimits(rate_per_minute=6000, burst=100, max_concurrency=2),
        expires_at=None, now=time.time(),
    ))
    before = worker.run_count()

    async def one(client: AsyncClient, i: int) -> str:
        try:
            await client.infer(MODEL, {"prompt": f"call {i}", "sleep_ms": 1500})
        except RateLimited as error:
            return error.code
        return "ok"

    async def main() -> list[str]:
        async with AsyncClient(gate.url, record.key_id, credentials.format_secret(secret),
                               max_retries=0) as client:
            return await asyncio.gather(*[one(client, i) for i in range(6)])

    outcomes = asyncio.run(main())
    assert outcomes.count("ok") == 2
    assert outcomes.count("concurrency_limited") == 4
    assert worker.run_count() - before == 2


def test_audit_events_are_written_without_secrets(gate: RunningGate, worker: RunningWorker) -> None:
    keys = demo_keys(gate)
    with Client(gate.url, *keys.main) as client:
        client.infer(MODEL, {"prompt": "Audit me. Quietly."})
    text = gate.state.audit_log.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()]
    assert events[-1]["decision"] == "allow"
    assert events[-1]["backend_ran"] is True
    assert events[-1]["backend_job_id"]
    assert keys.main[1] not in text
    assert "Audit me" not in text


def test_oversized_upload_is_refused_unread_and_audited(gate: RunningGate) -> None:
    import httpx

    with httpx.Client(trust_env=False) as client:
        response = client.post(f"{gate.url}/v1/models/{MODEL}/infer", content=b"x" * 2_000_000,
                               headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    last = json.loads(gate.state.audit_log.read_text(encoding="utf-8").splitlines()[-1])
    assert (last["request_id"], last["code"]) == (response.headers["x-request-id"],
                                                  "body_too_large")
