"""`KeyAdmin` that writes an audit event for every lifecycle change made outside the gate.

Through the gate, the admin API already audits each action (gate.py: `admin_action`,
`admin_target`). The CLI on the gate's own machine (`gpushield keys …` without `--gate`)
changes the local store directly; wrapping its `LocalKeyAdmin` in this class puts the same
kind of event in the same audit log, so no create, rotate, revoke, quarantine, restore or
budget change goes unrecorded. Reads (list, show, usage) are not audited, as at the gate
they are not lifecycle changes either. Never a secret: the event names the action and the
key id only.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ..keyguard.budget import BudgetSpec
from ..keyguard.records import KeyRecord, KeyStatus
from ..ports import AuditEvent, AuditSink, Clock
from .service import CreatedKey, KeyAdmin, KeyView, NewKey, RotatedKey


class AuditedKeyAdmin:
    def __init__(self, inner: KeyAdmin, audit: AuditSink, clock: Clock,
                 route: str = "cli:keys") -> None:
        self._inner = inner
        self._audit = audit
        self._clock = clock
        self._route = route

    async def _record(self, action: str, key_id: str) -> None:
        await self._audit.write(AuditEvent(
            ts=self._clock.now(), request_id=secrets.token_hex(8), route=self._route,
            decision="allow", stage="admin", status=200, code=None, latency_ms=0.0,
            key_id=None, extra={"admin_action": action, "admin_target": key_id},
        ))

    async def create(self, spec: NewKey) -> CreatedKey:
        created = await self._inner.create(spec)
        await self._record("create", created.record.key_id)
        return created

    async def list(self) -> list[KeyRecord]:
        return await self._inner.list()

    async def get(self, key_id: str) -> KeyView:
        return await self._inner.get(key_id)

    async def set_status(self, key_id: str, status: KeyStatus) -> KeyRecord:
        record = await self._inner.set_status(key_id, status)
        await self._record(f"status:{status}", key_id)
        return record

    async def rotate(self, key_id: str, grace_s: float) -> RotatedKey:
        rotated = await self._inner.rotate(key_id, grace_s)
        await self._record("rotate", key_id)
        return rotated

    async def usage(self, key_id: str, account_budgets: Sequence[BudgetSpec] = ()
                    ) -> dict[str, Any]:
        return await self._inner.usage(key_id, account_budgets)

    async def set_budgets(self, key_id: str, budgets: Sequence[BudgetSpec]) -> None:
        await self._inner.set_budgets(key_id, budgets)
        await self._record("budgets", key_id)

    async def remember_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        return await self._inner.remember_nonce(nonce, expires_at, now)
