"""Spend alerts: thresholds crossed inside the key guard, webhooks sent after the response.

`thresholds` decides (in the settlement transaction, deduplicated per budget period),
`webhooks` shapes the payload (Slack-compatible or generic JSON), `sender` delivers through the
Upstream port with retries and backoff, deferred through the Background port (ctx.waitUntil at
the edge) so an alert never delays or fails a request.
"""

from __future__ import annotations

from .sender import AlertSender, WebhookTarget

__all__ = ["AlertSender", "WebhookTarget"]
