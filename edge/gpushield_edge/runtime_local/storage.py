"""`SqlStorage` on CPython's sqlite3 — the key guard's local home.

WAL journaling lets the `gpushield keys` CLI read while the gate writes; BEGIN IMMEDIATE takes
the write lock at the start of `admit`, so two gate processes (or the CLI revoking a key)
serialise on it and every decision sees the latest committed state. synchronous=NORMAL keeps
commits off fsync in WAL mode: a power cut may lose the last few admissions, never corrupt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SqliteStorage:
    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=5.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._depth = 0

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def atomic(self, work: Callable[[], T]) -> T:
        if self._depth:
            return work()
        self._db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            result = work()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._depth -= 1
        self._db.execute("COMMIT")
        return result

    def close(self) -> None:
        self._db.close()
