"""The RunPod adapter against a real RunPod worker and against RunPod's production protocol.

The `local` flavor is exercised against the example worker served by the `runpod` package's own
server (a real process, started once per module). The `serverless` flavor is exercised against
`runpod_production_stub`, which reproduces the documented production endpoints the local server
lacks (prefix, auth, wait/poll, timing fields, cancel). Calls go through the real HttpxUpstream
and SystemClock, as in the local gate.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.runpod_production_stub import ProductionStub, start_production_stub
from tests.support.runpod_worker import RunningWorker, start_runpod_worker

from gpushield_edge.backends.base import BackendCall, BackendRejected, BackendResult
from gpushield_edge.backends.runpod import RunPodBackend, RunPodConfig
from gpushield_edge.ports import UpstreamError
from gpushield_edge.runtime_local.clock import SystemClock
from gpushield_edge.runtime_local.upstream import HttpxUpstream

pytestmark = pytest.mark.slow

PROMPT = (
    "Leaked keys burn GPU hours. Budgets stop leaked keys before a GPU is paid for. "
    "Signed requests make a leaked URL useless."
)


def make_call(
    input: dict[str, Any] | None = None,
    *,
    execution_timeout_ms: int = 30_000,
    deadline_s: float = 20.0,
) -> BackendCall:
    return BackendCall(
        request_id="req-1",
        model="summariser",
        input=input if input is not None else {"prompt": PROMPT, "max_tokens": 16},
        execution_timeout_ms=execution_timeout_ms,
        deadline_s=deadline_s,
    )


def invoke(config: RunPodConfig, call: BackendCall) -> BackendResult:
    async def go() -> BackendResult:
        upstream = HttpxUpstream()
        try:
            return await RunPodBackend(config).invoke(call, upstream, SystemClock())
        finally:
            await upstream.aclose()

    return asyncio.run(go())


# --------------------------------------------------------------------- real local worker


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    with start_runpod_worker(tmp_path_factory.mktemp("runpod-worker")) as running:
        yield running


def local_config(worker: RunningWorker) -> RunPodConfig:
    return RunPodConfig(base_url=worker.url, endpoint_id=None, api_key=None, flavor="local")


def test_local_runsync_returns_the_model_output(worker: RunningWorker) -> None:
    result = invoke(local_config(worker), make_call())

    assert result.status == "COMPLETED"
    assert result.dispatched is True
    assert result.job_id is not None
    assert result.job_id.startswith("test-")
    assert result.error is None
    output = result.output
    assert output["model"] == "gpushield-demo-summariser"
    assert output["usage"]["prompt_tokens"] == 25
    assert output["usage"]["completion_tokens"] <= 16
    assert output["truncated"] is True
    assert {"word": "leaked", "count": 3} in output["top_words"]
    # The local server reports no timing; the gate measures its own.
    assert result.execution_ms is None
    assert result.delay_ms is None
    assert result.measured_ms > 0


def test_local_handler_exception_is_scrubbed_to_its_type(worker: RunningWorker) -> None:
    secret_detail = "cuda context at /opt/models/weights.bin"
    result = invoke(local_config(worker), make_call({"prompt": "hi", "fail": secret_detail}))

    assert result.status == "FAILED"
    assert result.error == "RuntimeError"
    assert result.output is None
    rendered = repr(result)
    assert "Traceback" not in rendered
    assert secret_detail not in rendered
    assert "handler.py" not in rendered


def test_local_handler_error_string_becomes_a_generic_reason(worker: RunningWorker) -> None:
    result = invoke(local_config(worker), make_call({"prompt": "", "max_tokens": 4}))

    assert result.status == "FAILED"
    assert result.error == "handler_error"


def test_local_runlog_counts_one_run_per_call(worker: RunningWorker) -> None:
    before = worker.run_count()
    results = [invoke(local_config(worker), make_call()) for _ in range(3)]

    assert [r.status for r in results] == ["COMPLETED"] * 3
    assert worker.run_count() == before + 3
    logged_ids = [line.split("\t")[0] for line in worker.runlog_path.read_text().splitlines()]
    assert [r.job_id for r in results] == logged_ids[-3:]
    assert PROMPT not in worker.runlog_path.read_text()


def test_local_job_outlasting_the_deadline_times_out(worker: RunningWorker) -> None:
    call = make_call({"prompt": "slow", "sleep_ms": 3_000}, deadline_s=0.5)

    with pytest.raises(UpstreamError) as caught:
        invoke(local_config(worker), call)

    assert caught.value.kind == "timeout"


# ------------------------------------------------------------- production protocol (stub)


@pytest.fixture(scope="module")
def stub_server() -> Iterator[ProductionStub]:
    with start_production_stub() as stub:
        yield stub


@pytest.fixture
def stub(stub_server: ProductionStub) -> ProductionStub:
    stub_server.reset()
    return stub_server


def prod_config(stub: ProductionStub, **overrides: Any) -> RunPodConfig:
    settings: dict[str, Any] = {
        "base_url": stub.url,
        "endpoint_id": stub.endpoint_id,
        "api_key": stub.api_key,
        "flavor": "serverless",
        "poll_interval_s": 0.1,
    } | overrides
    return RunPodConfig(**settings)


def test_runsync_passes_policy_auth_and_reports_platform_timing(stub: ProductionStub) -> None:
    stub.configure(job_duration_s=0.2, delay_s=0.05)
    call = make_call({"prompt": "hello"}, execution_timeout_ms=7_000)

    result = invoke(prod_config(stub), call)

    assert result.status == "COMPLETED"
    assert result.output == {"echo": {"prompt": "hello"}}
    assert result.execution_ms == 200
    assert result.delay_ms == 50
    [sent] = stub.requests_to("runsync")
    assert sent.method == "POST"
    assert sent.json() == {"input": {"prompt": "hello"}, "policy": {"executionTimeout": 7_000}}
    assert sent.headers["authorization"] == f"Bearer {stub.api_key}"
    assert 1_000 <= int(sent.query["wait"][0]) <= 300_000
    assert stub.requests_to("status") == []
    assert stub.requests_to("cancel") == []


def test_job_outlasting_the_sync_wait_is_polled_to_completion(stub: ProductionStub) -> None:
    stub.configure(job_duration_s=1.6)

    result = invoke(prod_config(stub, sync_wait_ms=1_000), make_call(deadline_s=10))

    assert result.status == "COMPLETED"
    assert result.execution_ms == 1_600
    assert stub.requests_to("runsync")[0].query["wait"] == ["1000"]
    polls = stub.requests_to("status")
    assert polls, "a job still IN_PROGRESS after the wait must be polled"
    assert {p.method for p in polls} == {"GET"}
    assert all(p.path.endswith(result.job_id or "?") for p in polls)
    assert stub.requests_to("cancel") == []


def test_job_beyond_the_deadline_is_cancelled_and_reported_timed_out(
    stub: ProductionStub,
) -> None:
    stub.configure(job_duration_s=30)

    result = invoke(prod_config(stub, sync_wait_ms=1_000), make_call(deadline_s=2.0))

    assert result.status == "TIMED_OUT"
    assert result.error == "deadline_exceeded"
    assert result.dispatched is True
    # Past the sync wait the job was polled (not given up on at once), then cancelled.
    assert stub.requests_to("status")
    [cancel] = stub.requests_to("cancel")
    assert cancel.method == "POST"
    assert cancel.path.endswith(f"/cancel/{result.job_id}")
    assert stub.jobs[result.job_id or "?"].snapshot(0)["status"] == "CANCELLED"


def test_platform_execution_timeout_is_reported_as_timed_out(stub: ProductionStub) -> None:
    stub.configure(job_duration_s=10)

    result = invoke(prod_config(stub), make_call(execution_timeout_ms=1_000, deadline_s=10))

    assert result.status == "TIMED_OUT"
    assert result.error == "execution_timeout"
    assert result.execution_ms == 1_000
    assert stub.requests_to("cancel") == []


def test_failed_job_keeps_only_the_error_type(stub: ProductionStub) -> None:
    stub.configure(fail_with=("torch.cuda.OutOfMemoryError", "tried to allocate 20 GiB"))

    result = invoke(prod_config(stub), make_call())

    assert result.status == "FAILED"
    assert result.error == "OutOfMemoryError"
    assert result.execution_ms is not None
    assert "allocate" not in repr(result)


def test_wait_is_clamped_to_runpods_allowed_range(stub: ProductionStub) -> None:
    short = invoke(prod_config(stub), make_call(deadline_s=0.8))
    long = invoke(prod_config(stub, sync_wait_ms=300_000), make_call(deadline_s=3_600))

    assert (short.status, long.status) == ("COMPLETED", "COMPLETED")
    waits = [r.query["wait"] for r in stub.requests_to("runsync")]
    assert waits == [["1000"], ["300000"]]


def test_bad_platform_key_is_rejected_without_leaking_it(stub: ProductionStub) -> None:
    wrong_key = "rp_wrong_key_should_never_show"

    with pytest.raises(BackendRejected) as caught:
        invoke(prod_config(stub, api_key=wrong_key), make_call())

    assert caught.value.status == 401
    assert caught.value.reason == "unauthorized"
    assert wrong_key not in str(caught.value)
    assert wrong_key not in repr(prod_config(stub, api_key=wrong_key))
    assert stub.jobs == {}


@pytest.mark.parametrize(
    ("status", "retry_after", "reason", "retry_after_s"),
    [(429, "7", "rate_limited", 7.0), (503, None, "platform_error", None)],
)
def test_platform_http_errors_are_rejections(
    stub: ProductionStub, status: int, retry_after: str | None, reason: str,
    retry_after_s: float | None,
) -> None:
    stub.configure(force_status=status, retry_after=retry_after)

    with pytest.raises(BackendRejected) as caught:
        invoke(prod_config(stub), make_call())

    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert caught.value.retry_after_s == retry_after_s


def test_garbage_body_is_a_protocol_error(stub: ProductionStub) -> None:
    stub.configure(garbage_body=True)

    with pytest.raises(UpstreamError) as caught:
        invoke(prod_config(stub), make_call())

    assert caught.value.kind == "protocol"


def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        config = RunPodConfig(f"http://127.0.0.1:{port}", "ep", "key", flavor="serverless")

        with pytest.raises(UpstreamError) as caught:
            invoke(config, make_call())

    assert caught.value.kind == "connect"


def test_connection_dropped_mid_response_is_a_protocol_error() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_half_and_hang_up() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65_536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{\"status\":")

    thread = threading.Thread(target=answer_half_and_hang_up, daemon=True)
    thread.start()
    try:
        config = RunPodConfig(f"http://127.0.0.1:{port}", "ep", "key", flavor="serverless")
        with pytest.raises(UpstreamError) as caught:
            invoke(config, make_call())
    finally:
        thread.join(timeout=5)
        server.close()

    assert caught.value.kind == "protocol"


def test_expired_deadline_dispatches_nothing(stub: ProductionStub) -> None:
    result = invoke(prod_config(stub), make_call(deadline_s=0))

    assert (result.status, result.dispatched, result.job_id) == ("TIMED_OUT", False, None)
    assert stub.requests == []


def test_config_refuses_values_runpod_would_not_accept() -> None:
    with pytest.raises(ValueError, match="sync_wait_ms"):
        RunPodConfig("https://api.runpod.ai", "ep", "key", sync_wait_ms=500)
    with pytest.raises(ValueError, match="endpoint_id"):
        RunPodConfig("https://api.runpod.ai", "../status", "key")
    with pytest.raises(ValueError, match="api_key"):
        RunPodConfig("https://api.runpod.ai", "ep", None)
