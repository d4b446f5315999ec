"""Audit sink writing one JSON line per request to a file (and optionally a logger).

The event type itself cannot hold request content (see ports.AuditEvent); this sink adds
nothing to it, so what is on disk is exactly the safe fields.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import IO

from ..ports import AuditEvent

_FIELDS = tuple(field.name for field in fields(AuditEvent))


class JsonLinesAuditSink:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)

    async def write(self, event: AuditEvent) -> None:
        # A shallow read of the fields: `dataclasses.asdict` deep-copies and costs more than
        # the rest of the gate's decision.
        document = {name: value for name in _FIELDS
                    if (value := getattr(event, name)) is not None and value != {}}
        self._file.write(json.dumps(document, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()
