"""The account cap wired the way the edge runs it: every key guard in its own database (one
Durable Object each), the account guard in another, all talking JSON over the RPC endpoints
(`GuardEndpoint`, `AccountEndpoint`, `RemoteAccount`, `remote_reclaim`)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from pathlib import Path

from tests.support.clock import FixedClock

from gpushield_edge.admin.service import NewKey
from gpushield_edge.keyguard import AdmitRequest, KeyLimits, SettleRequest
from gpushield_edge.keyguard.account import (
    AccountEndpoint,
    AccountGuardCore,
    RemoteAccount,
    remote_reclaim,
)
from gpushield_edge.keyguard.budget import BudgetSpec
from gpushield_edge.keyguard.guard import KeyGuardCore
from gpushield_edge.keyguard.rpc import GuardEndpoint, RemoteKeyGuard, call_guard
from gpushield_edge.runtime_local.crypto import LocalCrypto
from gpushield_edge.runtime_local.storage import SqliteStorage
from gpushield_wire import algorithms, credentials

from .guardkit import KEK, QUIET, T0

CAP = BudgetSpec("month", "month", limit_gpu_ms=10_000, chunk_gpu_ms=4_000)


def test_account_cap_across_separate_key_objects(tmp_path: Path) -> None:
    endpoints: dict[str, GuardEndpoint] = {}

    async def guard_call(key_id: str, method: str, payload: str) -> str:
        return await endpoints[key_id].dispatch(method, payload)

    account_core = AccountGuardCore(SqliteStorage(tmp_path / "account.db"),
                                    reclaim=remote_reclaim(guard_call))
    account_core.migrate()
    account_endpoint = AccountEndpoint(account_core)

    async def account_call(method: str, payload: str) -> str:
        return await account_endpoint.dispatch(method, payload)

    async def main() -> list[str]:
        keys: list[tuple[str, bytes]] = []
        for index in range(3):
            key_id = f"gsk_edgeshapetest{index:04d}"
            core = KeyGuardCore(SqliteStorage(tmp_path / f"{key_id}.db"), LocalCrypto(KEK),
                                account=RemoteAccount(account_call))
            core.migrate()
            endpoints[key_id] = GuardEndpoint(core, FixedClock(T0))
            spec = NewKey(scopes=("*",), limits=KeyLimits(max_call_gpu_ms=1000))
            created = await call_guard(guard_call, key_id, "create",
                                       {"key_id": key_id, "spec": spec.to_dict()})
            keys.append((key_id, credentials.parse_secret(created["secret"])))
        remote = RemoteKeyGuard(guard_call)
        outcomes = []
        for turn in range(14):
            key_id, secret = keys[turn % 3]
            base = f"edge {turn}".encode()
            result = await remote.admit(AdmitRequest(
                key_id=key_id, alg=algorithms.HMAC_SHA256, signature_base=base,
                signature=hmac.new(secret, base, hashlib.sha256).digest(), model="m",
                nonce=secrets.token_hex(8), nonce_expires_at=T0 + 300, now=T0,
                lease_ttl_s=60, account_budgets=(CAP.to_dict(),)))
            outcomes.append(result.code or result.outcome)
            if result.outcome == "admitted" and turn % 2 == 0:
                await remote.settle(SettleRequest(key_id, str(result.lease_id), None, None,
                                                  T0, ran=True, used_ms=250, policy=QUIET))
        return outcomes

    outcomes = asyncio.run(main())
    granted_ms, _ = account_core.granted(CAP, T0)
    assert granted_ms <= CAP.limit_gpu_ms
    # Seven calls stay open at 1000 ms and seven settle at 250: 7 × 1000 + 7 × 250 = 8750 fits
    # in 10 000 only because the account reclaimed the spare of the keys' first chunks.
    assert outcomes == ["admitted"] * 14
