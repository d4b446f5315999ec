"""Alert webhooks delivered to a real HTTP receiver: payload forms, retries with backoff,
sends that never hold up the caller, and a dead receiver given up on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver

from gpushield_edge.alerts import AlertSender, WebhookTarget
from gpushield_edge.alerts.sender import RetryPolicy
from gpushield_edge.runtime_local.background import TaskBackground
from gpushield_edge.runtime_local.clock import SystemClock
from gpushield_edge.runtime_local.upstream import HttpxUpstream

pytestmark = pytest.mark.slow

EVENT = {"kind": "budget_threshold", "key_id": "gsk_test", "budget_id": "day", "threshold": 80,
         "level_percent": 81.5, "unit": "day", "rolling": False, "tz": "UTC",
         "spent_gpu_ms": 8150, "spent_micros": 3_260_000, "limit_gpu_ms": 10_000,
         "limit_micros": 4_000_000, "resets_at": 1_767_312_000.0, "at": 1_767_300_000.0}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


class RecordingClock(SystemClock):
    """The system clock, noting every pause the sender asks for (the retry policy's backoff)."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super().sleep(seconds)


def _sender(receiver: WebhookReceiver, retry: RetryPolicy, upstream: HttpxUpstream,
            background: TaskBackground, clock: SystemClock | None = None) -> AlertSender:
    return AlertSender([WebhookTarget(receiver.url + "/slack", "slack"),
                        WebhookTarget(receiver.url + "/generic", "generic")],
                       upstream, clock or SystemClock(), background, retry)


async def _deliver(receiver: WebhookReceiver, retry: RetryPolicy,
                   clock: SystemClock | None = None) -> AlertSender:
    upstream = HttpxUpstream()
    background = TaskBackground()
    sender = _sender(receiver, retry, upstream, background, clock)
    sender.defer([EVENT])
    await background.drain()
    await upstream.aclose()
    return sender


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_slack_and_generic_payloads_arrive(receiver: WebhookReceiver) -> None:
    sender = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=1)))
    by_path = {item["path"]: item["body"] for item in receiver.received}
    slack = by_path["/slack"]
    assert "80%" in slack["text"] and "gsk_test" in slack["text"]
    assert slack["blocks"][0]["text"]["type"] == "mrkdwn"
    assert by_path["/generic"] == {"schema": "gpushield.alert.v1", "event": EVENT}
    assert (sender.delivered, sender.failed) == (2, 0)


@pytest.mark.parametrize("status", [500, 429])
def test_failures_are_retried_with_backoff(receiver: WebhookReceiver, status: int) -> None:
    receiver.fail_first, receiver.fail_status = 4, status
    clock = RecordingClock()
    sender = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=4, base_s=0.05), clock))
    assert (sender.delivered, sender.failed) == (2, 0)
    assert len(receiver.attempts) == 6  # four failures shared by the two targets, then two
    # One pause after each failure, doubling per target: each target's first is the base, and
    # (four failures over two targets) at least one target paused a second time, twice as long.
    assert len(clock.slept) == 4
    assert sorted(clock.slept)[:3] == [0.05, 0.05, 0.1]


def test_defer_returns_while_the_sends_are_pending(receiver: WebhookReceiver) -> None:
    """A slow receiver never holds up the request an alert follows: `defer` returns before
    any webhook is answered, and the sends complete afterwards."""
    receiver.hold()

    async def main() -> tuple[AlertSender, int, tuple[int, int, int]]:
        upstream = HttpxUpstream()
        background = TaskBackground()
        sender = _sender(receiver, RetryPolicy(max_attempts=1), upstream, background)
        sender.defer([EVENT])
        answered_when_defer_returned = receiver.answered
        await _until(lambda: len(receiver.attempts) == 2)  # both requests are at the receiver
        in_flight = (sender.delivered, sender.failed, receiver.answered)
        receiver.release()
        await background.drain()
        await upstream.aclose()
        return sender, answered_when_defer_returned, in_flight

    sender, answered_when_defer_returned, in_flight = asyncio.run(main())
    assert answered_when_defer_returned == 0
    assert in_flight == (0, 0, 0)  # received, unanswered, the sender still waiting on both
    assert (sender.delivered, sender.failed) == (2, 0)


def test_a_dead_receiver_gives_up(receiver: WebhookReceiver) -> None:
    receiver.fail_first, receiver.fail_status = 100, 503
    sender = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=3, base_s=0.01)))
    assert (sender.delivered, sender.failed) == (0, 2)
    assert len(receiver.attempts) == 6


def test_a_rejected_payload_is_not_retried(receiver: WebhookReceiver) -> None:
    receiver.fail_first, receiver.fail_status = 100, 400
    sender = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=5, base_s=0.01)))
    assert sender.failed == 2
    assert len(receiver.attempts) == 2
