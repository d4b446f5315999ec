"""`SqlStorage` on CPython's sqlite3 — the key guard's local home.

WAL journaling lets the `gpushield keys` CLI read while the gate writes; BEGIN IMMEDIATE takes
the write lock at the start of `admit`, so two gate processes (or the CLI revoking a key)
serialise on it and every decision sees the latest committed state. synchronous=NORMAL keeps
commits off fsync in WAL mode: a power cut may lose the last few admissions, never corrupt.

Checkpoints (copying the WAL back into the database, with an fsync) are what made the slowest
1% of admissions take milliseconds; they run on a helper thread with its own connection every
CHECKPOINT_EVERY commits instead of inside whichever commit crossed SQLite's threshold.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CHECKPOINT_EVERY = 512


class SqliteStorage:
    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=5.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._path = str(path)
        self._depth = 0
        self._commits = 0
        self._checkpointing = threading.Lock()

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
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self._checkpoint_in_background()
        return result

    def _checkpoint_in_background(self) -> None:
        if not self._checkpointing.acquire(blocking=False):
            return  # one is already running

        def work() -> None:
            try:
                with sqlite3.connect(self._path, timeout=5.0) as db:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # the next round retries; the WAL only grows meanwhile
            finally:
                self._checkpointing.release()

        threading.Thread(target=work, name="gpushield-checkpoint", daemon=True).start()

    def close(self) -> None:
        with self._checkpointing:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._db.close()
