"""Alert payloads: a generic JSON document and a Slack-compatible message.

The generic form is the alert event itself under a versioned envelope, for programs. The Slack
form is an incoming-webhook message (`text` plus a `blocks` section, which Slack, Mattermost and
Discord's /slack endpoint all accept), for people. Neither ever carries a secret or a prompt:
alert events are built from key ids, budget names and numbers only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

WebhookFormat = Literal["slack", "generic"]
SCHEMA = "gpushield.alert.v1"


def _money(micros: int | None) -> str:
    return "-" if micros is None else f"{micros / 1_000_000:.2f}"


def _seconds(gpu_ms: int | None) -> str:
    return "-" if gpu_ms is None else f"{gpu_ms / 1000:g} GPU-s"


def summary(event: dict[str, Any]) -> str:
    key = event.get("key_id", "?")
    if event.get("kind") == "key_quarantined":
        return (f":rotating_light: gpushield quarantined key `{key}` ({event.get('reason')}). "
                f"Restore it with `gpushield keys restore {key}` once you have checked it.")
    threshold = event.get("threshold")
    parts = []
    if event.get("limit_gpu_ms") is not None:
        parts.append(f"{_seconds(event.get('spent_gpu_ms'))} of "
                     f"{_seconds(event.get('limit_gpu_ms'))}")
    if event.get("limit_micros") is not None:
        parts.append(f"{_money(event.get('spent_micros'))} of "
                     f"{_money(event.get('limit_micros'))}")
    resets = datetime.fromtimestamp(float(event.get("resets_at", 0)), UTC)
    return (f":warning: gpushield key `{key}` reached {threshold}% of its "
            f"{event.get('budget_id')} budget ({'; '.join(parts)}); resets "
            f"{resets:%Y-%m-%d %H:%M} UTC.")


def payload(event: dict[str, Any], form: WebhookFormat) -> dict[str, Any]:
    if form == "slack":
        text = summary(event)
        return {"text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    return {"schema": SCHEMA, "event": event}
