"""`SqlStorage` on a Durable Object's `ctx.storage.sql` — the same SQL the local sqlite3 runs.

The guard talks to the JS storage object directly rather than through the SDK's RPC
converters: it only exchanges scalars and blobs, and each hot-path admission runs a handful
of statements, so per-call conversion overhead matters more than convenience here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .jsbridge import js_value, py_value

T = TypeVar("T")


class _Rollback(Exception):
    """Raised through `transactionSync` so the storage rolls back; carries nothing."""


class DurableSqlStorage:
    def __init__(self, js_storage: Any) -> None:
        self._storage = js_storage
        self._sql = js_storage.sql

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._sql.exec(sql, *[js_value(p) for p in params])
        return [tuple(py_value(cell) for cell in row) for row in cursor.raw()]

    def atomic(self, work: Callable[[], T]) -> T:
        """One `transactionSync`: all of `work`'s statements commit or none do. The result
        and any error are carried around the JS frame in Python, not through it."""
        outcome: list[T] = []
        failure: list[BaseException] = []

        def body() -> None:
            try:
                outcome.append(work())
            except BaseException as error:
                failure.append(error)
                raise _Rollback from None

        try:
            self._storage.transactionSync(body)
        except Exception:
            if failure:
                raise failure[0] from None
            raise
        return outcome[0]
