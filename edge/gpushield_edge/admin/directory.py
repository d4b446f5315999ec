"""The key directory: which keys exist, for listing them at the edge.

Locally one sqlite file holds every key, so listing is a query. At the edge each key lives in
its own Durable Object and nothing can enumerate them, so one more object — the directory —
keeps a copy of each key's public record (never a secret) and the admin API's nonces. It is on
the admin path only: inference requests never touch it, so it is not a global hot spot.
"""

from __future__ import annotations

import json
from typing import Any

from ..keyguard.records import KeyRecord
from ..keyguard.storage import SqlStorage

DIRECTORY_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS directory (
        key_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        record TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS admin_nonces (
        nonce TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
)


class KeyDirectoryCore:
    def __init__(self, storage: SqlStorage) -> None:
        self.storage = storage

    def migrate(self) -> None:
        self.storage.atomic(lambda: [self.storage.query(s) for s in DIRECTORY_SCHEMA])

    def put(self, record: KeyRecord) -> None:
        self.storage.query(
            "INSERT INTO directory (key_id, created_at, record) VALUES (?, ?, ?) "
            "ON CONFLICT (key_id) DO UPDATE SET record = excluded.record",
            (record.key_id, record.created_at, json.dumps(record.to_dict())),
        )

    def list(self) -> list[KeyRecord]:
        rows = self.storage.query("SELECT record FROM directory ORDER BY created_at")
        return [KeyRecord.from_dict(json.loads(str(row[0]))) for row in rows]

    def remember_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        def work() -> bool:
            query = self.storage.query
            query("DELETE FROM admin_nonces WHERE expires_at < ?", (now,))
            if query("SELECT 1 FROM admin_nonces WHERE nonce = ?", (nonce,)):
                return False
            query("INSERT INTO admin_nonces (nonce, expires_at) VALUES (?, ?)", (nonce, expires_at))
            return True

        return self.storage.atomic(work)

    async def dispatch(self, method: str, args: dict[str, Any]) -> Any:
        if method == "put":
            self.put(KeyRecord.from_dict(args["key"]))
            return None
        if method == "list":
            return [record.to_dict() for record in self.list()]
        if method == "remember_nonce":
            return self.remember_nonce(str(args["nonce"]), float(args["expires_at"]),
                                       float(args["now"]))
        raise ValueError(f"unknown directory method {method!r}")
