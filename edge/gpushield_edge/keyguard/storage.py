"""The one storage primitive the guard's algorithms need: SQL with an atomic section.

Locally `SqliteStorage` (runtime_local) wraps sqlite3 with BEGIN IMMEDIATE, so concurrent
gate processes and the `gpushield keys` CLI serialise on the write lock. In a Durable Object,
`ctx.storage.sql` plus `transactionSync` plays the same role, and the object's single thread
makes it the only writer for its key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class SqlStorage(Protocol):
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Runs one statement and returns its rows (empty for writes)."""

    def atomic(self, work: Callable[[], T]) -> T:
        """Runs `work` as one transaction: all its statements commit, or none do."""
