"""Audit sink writing one JSON line per request to a file (and optionally a logger).

The event type itself cannot hold request content (see ports.AuditEvent); this sink adds
nothing to it, so what is on disk is exactly the safe fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from ..ports import AuditEvent


class JsonLinesAuditSink:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)

    async def write(self, event: AuditEvent) -> None:
        document = event.document(omit_unset=True)
        self._file.write(json.dumps(document, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()
