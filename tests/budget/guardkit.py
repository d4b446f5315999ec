"""A real key guard (sqlite file, AES-GCM sealed secrets) driven with an injected clock.

Requests carry a genuine HMAC signature under the key's secret, so every admission goes
through the guard's full authenticate-then-decide path; only time is under the test's control.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpushield_edge.anomaly import AnomalyPolicy
from gpushield_edge.keyguard import AdmitRequest, AdmitResult, KeyLimits
from gpushield_edge.keyguard import budget as budget_mod
from gpushield_edge.keyguard.account import AccountGuardCore, local_reclaim
from gpushield_edge.keyguard.budget import BudgetSpec, Price
from gpushield_edge.keyguard.guard import KeyGuardCore
from gpushield_edge.keyguard.settlement import SettlePolicy, SettleResult
from gpushield_edge.runtime_local.crypto import LocalCrypto
from gpushield_edge.runtime_local.storage import SqliteStorage
from gpushield_wire import algorithms, credentials

MODEL = "summarize"
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
KEK = bytes(range(32))
FREE = Price()
QUIET = SettlePolicy(thresholds=(), anomaly=AnomalyPolicy(enabled=False))


@dataclass
class Guard:
    core: KeyGuardCore
    account: AccountGuardCore
    loop: asyncio.AbstractEventLoop
    secrets: dict[str, bytes] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def open(cls, path: Path, loop: asyncio.AbstractEventLoop) -> Guard:
        storage = SqliteStorage(path)
        account = AccountGuardCore(storage, reclaim=local_reclaim(storage))
        account.migrate()
        core = KeyGuardCore(storage, LocalCrypto(KEK), account=account)
        core.migrate()
        return cls(core, account, loop)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def new_key(self, budgets: tuple[BudgetSpec, ...] = (), *, max_call_gpu_ms: int = 1000,
                max_concurrency: int = 1000, scopes: tuple[str, ...] = ("*",)) -> str:
        secret = credentials.new_secret()
        record = self.run(self.core.create_key(
            key_id=credentials.new_key_id(), alg=algorithms.HMAC_SHA256, key_material=secret,
            scopes=scopes, limits=KeyLimits(rate_per_minute=1e6, burst=1_000_000,
                                            max_concurrency=max_concurrency,
                                            max_call_gpu_ms=max_call_gpu_ms),
            expires_at=None, now=T0 - 10))
        self.core.storage.atomic(lambda: budget_mod.set_key_budgets(
            self.core.storage.query, record.key_id, budgets))
        self.secrets[record.key_id] = secret
        return record.key_id

    def request(self, key_id: str, now: float, *, model: str = MODEL, price: Price = FREE,
                idem: str | None = None, account: tuple[BudgetSpec, ...] = (),
                ttl: float = 60.0, country: str | None = None) -> AdmitRequest:
        base = f"call {next(self.counter)} {secrets.token_hex(4)}".encode()
        return AdmitRequest(
            key_id=key_id, alg=algorithms.HMAC_SHA256, signature_base=base,
            signature=hmac.new(self.secrets[key_id], base, hashlib.sha256).digest(),
            model=model, nonce=secrets.token_hex(8), nonce_expires_at=now + 300, now=now,
            lease_ttl_s=ttl, idempotency_key=idem, fingerprint="fp" if idem else None,
            micros_per_gpu_s=price.micros_per_gpu_s, min_micros=price.min_micros,
            account_budgets=tuple(spec.to_dict() for spec in account), country=country)

    def admit(self, key_id: str, now: float, **kwargs: Any) -> AdmitResult:
        result: AdmitResult = self.run(self.core.admit(self.request(key_id, now, **kwargs)))
        return result

    def settle(self, key_id: str, lease_id: str, now: float, *, ran: bool = True,
               used_ms: int | None = None, policy: SettlePolicy = QUIET,
               idem: str | None = None) -> SettleResult:
        from gpushield_edge.keyguard import SettleRequest, StoredResponse

        response = StoredResponse(200, (), b"{}") if ran else None
        return self.core.settle(SettleRequest(key_id, lease_id, idem, response, now, ran=ran,
                                              used_ms=used_ms, policy=policy))

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        return self.core.storage.query(f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608

    def snapshot(self) -> str:
        tables = ("keys", "buckets", "nonces", "leases", "idempotency", "budgets",
                  "budget_usage", "reservations", "budget_chunks", "budget_alerts",
                  "anomaly_state", "account_grants")
        return json.dumps({t: [list(map(str, r)) for r in self.rows(t)] for t in tables})

    def committed(self, key_id: str, spec: BudgetSpec, now: float) -> tuple[int, int]:
        status = budget_mod.status(self.core.storage.query, key_id, spec, now)
        return status.committed_gpu_ms, status.committed_micros


def ledger_check(guard: Guard) -> None:
    """Counters equal the ledger they summarise; nothing negative; charges within reserves."""
    query = guard.core.storage.query
    expected: dict[tuple[str, str, float], list[int]] = {}
    for key_id, state, reserved_ms, reserved_micros, charged_ms, charged_micros, buckets in query(
            "SELECT key_id, state, reserved_gpu_ms, reserved_micros, charged_gpu_ms, "
            "charged_micros, buckets FROM reservations"):
        assert state in ("open", "settled", "expired")
        if state == "open":
            ms, micros = reserved_ms, reserved_micros
        else:
            ms, micros = charged_ms, charged_micros
            assert 0 <= ms <= reserved_ms and 0 <= micros <= reserved_micros
        for budget_id, bucket in json.loads(buckets):
            entry = expected.setdefault((key_id, budget_id, float(bucket)), [0, 0])
            entry[0] += ms
            entry[1] += micros
    for owner, budget_id, bucket, ms, micros in query(
            "SELECT owner, budget_id, bucket, gpu_ms, micros FROM budget_usage "
            "WHERE owner NOT LIKE 'account:%'"):
        assert ms >= 0 and micros >= 0
        assert [ms, micros] == expected.pop((owner, budget_id, float(bucket)), [0, 0])
    assert all(v == [0, 0] for v in expected.values())
