"""Alert webhooks delivered to a real HTTP receiver: payload forms, retries with backoff,
and a dead receiver that never blocks anything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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


async def _deliver(receiver: WebhookReceiver, retry: RetryPolicy,
                   url_suffix: str = "") -> tuple[AlertSender, int]:
    upstream = HttpxUpstream()
    background = TaskBackground()
    sender = AlertSender([WebhookTarget(receiver.url + "/slack" + url_suffix, "slack"),
                          WebhookTarget(receiver.url + "/generic" + url_suffix, "generic")],
                         upstream, SystemClock(), background, retry)
    sender.defer([EVENT])
    # Nothing has been sent when `defer` returns: it only schedules (the request it runs
    # after is never held up by a webhook).
    sent_during_defer = len(receiver.attempts)
    await background.drain()
    await upstream.aclose()
    return sender, sent_during_defer


def test_slack_and_generic_payloads_arrive(receiver: WebhookReceiver) -> None:
    sender, _ = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=1)))
    by_path = {item["path"]: item["body"] for item in receiver.received}
    slack = by_path["/slack"]
    assert "80%" in slack["text"] and "gsk_test" in slack["text"]
    assert slack["blocks"][0]["text"]["type"] == "mrkdwn"
    assert by_path["/generic"] == {"schema": "gpushield.alert.v1", "event": EVENT}
    assert (sender.delivered, sender.failed) == (2, 0)


@pytest.mark.parametrize("status", [500, 429])
def test_failures_are_retried_with_backoff(receiver: WebhookReceiver, status: int) -> None:
    receiver.fail_first, receiver.fail_status = 4, status
    sender, _ = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=4, base_s=0.05)))
    assert (sender.delivered, sender.failed) == (2, 0)
    assert len(receiver.attempts) == 6  # four failures shared by the two targets, then two
    times = sorted(t for t, _ in receiver.attempts)
    assert times[-1] - times[0] >= 0.05  # at least one backoff pause happened


def test_a_dead_receiver_never_blocks_and_gives_up(receiver: WebhookReceiver) -> None:
    receiver.fail_first, receiver.fail_status = 100, 503
    sender, sent_during_defer = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=3,
                                                                           base_s=0.01)))
    assert sent_during_defer == 0  # defer only schedules
    assert (sender.delivered, sender.failed) == (0, 2)
    assert len(receiver.attempts) == 6


def test_a_rejected_payload_is_not_retried(receiver: WebhookReceiver) -> None:
    receiver.fail_first, receiver.fail_status = 100, 400
    sender, _ = asyncio.run(_deliver(receiver, RetryPolicy(max_attempts=5, base_s=0.01)))
    assert sender.failed == 2
    assert len(receiver.attempts) == 2
