"""Faults only the edge has: a key's Durable Object that errors or never answers. The gate
must fail closed — 503 guard_unavailable, nothing forwarded — and recover when it is back."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.support.bad_requests import signed_request, to_http

from gpushield.devtools.runpod_worker import RunningWorker

from .conftest import GateUnderTest

# Durable Objects exist only on the Workers runtime.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("gate", ["workers"], indirect=True)]


@pytest.fixture
def edge(gate: GateUnderTest) -> Iterator[GateUnderTest]:
    assert gate.edge is not None
    yield gate
    gate.edge.set_fault("KEY_GUARD", "ok")


@pytest.mark.parametrize("mode", ["throw", "hang"])
def test_guard_object_failure_fails_closed_and_forwards_nothing(
    edge: GateUnderTest, worker: RunningWorker, mode: str
) -> None:
    assert edge.edge is not None
    with httpx.Client(trust_env=False, timeout=30) as http:
        edge.edge.set_fault("KEY_GUARD", mode)
        runs = worker.run_count()
        refused = http.send(to_http(signed_request(edge)))
        assert (refused.status_code, refused.json()["code"]) == (503, "guard_unavailable")
        assert refused.headers["content-type"] == "application/problem+json"
        assert worker.run_count() == runs
        edge.edge.set_fault("KEY_GUARD", "ok")
        assert http.send(to_http(signed_request(edge))).status_code == 200
