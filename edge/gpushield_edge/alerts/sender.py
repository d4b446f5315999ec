"""Delivers alert webhooks after the response, with retries and exponential backoff.

`AlertSender.defer(events)` hands the work to the Background port (asyncio tasks locally,
ctx.waitUntil at the edge) and returns at once: a slow or dead receiver never delays or fails
a request. Each webhook is retried on transport faults, 429 and 5xx with exponential backoff
(base · 2^n, capped, honouring a receiver's Retry-After up to the cap); a 4xx other than 429
is final (retrying a rejected payload changes nothing). Failures are logged by kind only: a
webhook URL is a credential (Slack's are) and never appears in logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..ports import Background, Clock, Upstream, UpstreamError, UpstreamRequest
from .webhooks import WebhookFormat, payload

logger = logging.getLogger("gpushield.alerts")


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    form: WebhookFormat = "generic"

    def __repr__(self) -> str:  # the URL is a secret
        return f"WebhookTarget(form={self.form!r})"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    timeout_s: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = min(self.cap_s, self.base_s * float(2 ** attempt))
        if retry_after is not None:
            return min(self.cap_s, max(backoff, retry_after))
        return backoff


class AlertSender:
    def __init__(self, targets: Sequence[WebhookTarget], upstream: Upstream, clock: Clock,
                 background: Background, retry: RetryPolicy | None = None) -> None:
        self.targets = tuple(targets)
        self.upstream = upstream
        self.clock = clock
        self.background = background
        self.retry = retry or RetryPolicy()
        self.delivered = 0
        self.failed = 0

    def defer(self, events: Sequence[dict[str, Any]]) -> None:
        """Queues every event for every target; returns immediately."""
        for event in events:
            for target in self.targets:
                self.background.defer(self._send_quietly(target, event))

    async def _send_quietly(self, target: WebhookTarget, event: dict[str, Any]) -> None:
        await self.send(target, event)

    async def send(self, target: WebhookTarget, event: dict[str, Any]) -> bool:
        """Delivers one event to one target; True once a 2xx came back."""
        body = json.dumps(payload(event, target.form), separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "user-agent": "gpushield-alerts/1"}
        for attempt in range(self.retry.max_attempts):
            retry_after: float | None = None
            outcome: str
            try:
                response = await self.upstream.send(UpstreamRequest(
                    "POST", target.url, headers, body, self.retry.timeout_s))
            except UpstreamError as error:
                outcome = error.kind
            else:
                if 200 <= response.status < 300:
                    self.delivered += 1
                    return True
                outcome = f"http_{response.status}"
                if response.status != 429 and response.status < 500:
                    break
                retry_after = _retry_after(response.headers.get("retry-after"))
            if attempt + 1 < self.retry.max_attempts:
                await self.clock.sleep(self.retry.delay(attempt, retry_after))
        self.failed += 1
        logger.warning("alert %s for key %s not delivered (%s, %s webhook)", event.get("kind"),
                       event.get("key_id"), outcome, target.form)
        return False


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None
