"""`AdminClient`: manage a deployed gate's keys over its signed admin API.

It implements the same `KeyAdmin` interface as the in-process store, so `gpushield keys …`
behaves identically against `.gpushield/` on this machine and against a gate at the edge;
only where the keys live changes. Requests are signed with the admin credential
(`GPUSHIELD_ADMIN_SECRET`), exactly like inference calls are signed with an API key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from gpushield_edge.admin.service import (
    CreatedKey,
    KeyAdminError,
    KeyView,
    NewKey,
    RotatedKey,
)
from gpushield_edge.keyguard.budget import BudgetSpec
from gpushield_edge.keyguard.records import KeyRecord, KeyStatus
from gpushield_wire.credentials import ADMIN_KEY_ID
from gpushield_wire.errors import parse_problem

from ._auth import SignatureAuth

__all__ = ["AdminClient"]


class AdminClient:
    def __init__(self, base_url: str, admin_secret: str, *, timeout: float = 15.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), auth=SignatureAuth(ADMIN_KEY_ID, admin_secret),
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"AdminClient(base_url={str(self._http.base_url)!r})"

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        content = None if body is None else json.dumps(body).encode()
        headers = {} if content is None else {"content-type": "application/json"}
        try:
            response = await self._http.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as error:
            raise KeyAdminError(f"cannot reach the gate: {type(error).__name__}") from None
        try:
            document = response.json()
        except ValueError:
            document = None
        if response.is_success and isinstance(document, dict):
            return document
        problem = parse_problem(document)
        if problem is None:
            raise KeyAdminError(f"the gate answered HTTP {response.status_code}")
        message = f"{problem.code}: {problem.detail or problem.kind.title}"
        raise KeyAdminError(message, missing=problem.code == "key_not_found")

    async def create(self, spec: NewKey) -> CreatedKey:
        answer = await self._call("POST", "/admin/keys", spec.to_dict())
        return CreatedKey(KeyRecord.from_dict(answer["key"]), str(answer["secret"]))

    async def list(self) -> list[KeyRecord]:
        answer = await self._call("GET", "/admin/keys")
        return [KeyRecord.from_dict(item) for item in answer["keys"]]

    async def get(self, key_id: str) -> KeyView:
        answer = await self._call("GET", f"/admin/keys/{key_id}")
        return KeyView(KeyRecord.from_dict(answer["key"]), int(answer["in_flight"]))

    async def set_status(self, key_id: str, status: KeyStatus) -> KeyRecord:
        answer = await self._call("POST", f"/admin/keys/{key_id}/status", {"status": status})
        return KeyRecord.from_dict(answer["key"])

    async def rotate(self, key_id: str, grace_s: float) -> RotatedKey:
        answer = await self._call("POST", f"/admin/keys/{key_id}/rotate", {"grace_s": grace_s})
        until = answer.get("previous_valid_until")
        return RotatedKey(KeyRecord.from_dict(answer["key"]), str(answer["secret"]),
                          None if until is None else float(until))
    async def usage(self, key_id: str, account_budgets: Sequence[BudgetSpec] = ()
                    ) -> dict[str, Any]:
        """The gate adds its own account budgets; `account_budgets` is for local stores."""
        answer = await self._call("GET", f"/admin/keys/{key_id}/usage")
        return dict(answer["usage"])

    async def set_budgets(self, key_id: str, budgets: Sequence[BudgetSpec]) -> None:
        await self._call("POST", f"/admin/keys/{key_id}/budgets",
                         {"budgets": [spec.to_dict() for spec in budgets]})

    async def remember_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        raise NotImplementedError("nonces are remembered by the gate, not by its clients")
