"""`KeyAdmin` at the edge: each key in its own guard object, plus the directory.

A create picks the key id here, asks that key's guard to generate and seal its secret (the
secret is returned once, to the operator), then files the public record in the directory.
Status changes go to the key's guard first — that is what makes revocation take effect on the
very next request — and the directory copy follows.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gpushield_wire import credentials

from ..keyguard.budget import BudgetSpec
from ..keyguard.guard import KeyGuardError
from ..keyguard.records import KeyRecord, KeyStatus
from ..keyguard.rpc import GuardCall, call_guard
from .service import CreatedKey, KeyAdminError, KeyView, NewKey, RotatedKey

DirectoryCall = Callable[[str, str], Awaitable[str]]
"""`call(method, args_json) -> result_json` on the directory object."""


class DurableKeyAdmin:
    def __init__(self, guard: GuardCall, directory: DirectoryCall) -> None:
        self._guard = guard
        self._directory = directory

    async def _dir(self, method: str, args: dict[str, Any]) -> Any:
        return json.loads(await self._directory(method, json.dumps(args)))

    async def _ask(self, key_id: str, method: str, args: dict[str, Any]) -> Any:
        try:
            return await call_guard(self._guard, key_id, method, args)
        except KeyGuardError as error:
            raise KeyAdminError(str(error), missing=error.missing) from None

    async def create(self, spec: NewKey) -> CreatedKey:
        key_id = credentials.new_key_id()
        answer = await self._ask(key_id, "create", {"key_id": key_id, "spec": spec.to_dict()})
        record = KeyRecord.from_dict(answer["key"])
        await self._dir("put", {"key": record.to_dict()})
        return CreatedKey(record, str(answer["secret"]))

    async def list(self) -> list[KeyRecord]:
        return [KeyRecord.from_dict(item) for item in await self._dir("list", {})]

    async def get(self, key_id: str) -> KeyView:
        self._check_id(key_id)
        answer = await self._ask(key_id, "get", {"key_id": key_id})
        return KeyView(KeyRecord.from_dict(answer["key"]), int(answer["in_flight"]))

    async def set_status(self, key_id: str, status: KeyStatus) -> KeyRecord:
        self._check_id(key_id)
        answer = await self._ask(key_id, "set_status", {"key_id": key_id, "status": status})
        record = KeyRecord.from_dict(answer["key"])
        await self._dir("put", {"key": record.to_dict()})
        return record

    async def rotate(self, key_id: str, grace_s: float) -> RotatedKey:
        self._check_id(key_id)
        answer = await self._ask(key_id, "rotate", {"key_id": key_id, "grace_s": grace_s})
        record = KeyRecord.from_dict(answer["key"])
        await self._dir("put", {"key": record.to_dict()})
        return RotatedKey(record, str(answer["secret"]), answer["previous_valid_until"])
    async def usage(self, key_id: str, account_budgets: Sequence[BudgetSpec] = ()
                    ) -> dict[str, Any]:
        self._check_id(key_id)
        return dict(await self._ask(key_id, "usage", {
            "key_id": key_id, "account_budgets": [spec.to_dict() for spec in account_budgets]}))

    async def set_budgets(self, key_id: str, budgets: Sequence[BudgetSpec]) -> None:
        self._check_id(key_id)
        await self._ask(key_id, "set_budgets", {
            "key_id": key_id, "budgets": [spec.to_dict() for spec in budgets]})

    async def remember_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        return bool(await self._dir(
            "remember_nonce", {"nonce": nonce, "expires_at": expires_at, "now": now}))

    @staticmethod
    def _check_id(key_id: str) -> None:
        # An id that cannot exist never creates an empty Durable Object just to say so.
        if not credentials.is_key_id(key_id):
            raise KeyAdminError(f"no key {key_id}", missing=True)
