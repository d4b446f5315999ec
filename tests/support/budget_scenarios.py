"""Cost-control scenarios over real HTTP, written against a gate URL and a `KeyAdmin`.

Nothing here knows which runtime serves the gate: keys are made through the admin interface
(`AdminClient` against the gate's admin API, or a local store), calls go through the SDK, and
results are read back through `KeyAdmin.usage`. tests/runtimes/test_budgets.py runs them
against the local gate and against the Worker in Pyodide.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from gpushield import AsyncClient
from gpushield.errors import APIError, BudgetExceeded, RateLimited
from gpushield_edge.admin.service import KeyAdmin, NewKey
from gpushield_edge.keyguard import KeyLimits
from gpushield_edge.keyguard.budget import BudgetSpec


@dataclass(frozen=True)
class LoadResult:
    clients: int
    admitted: int
    refused_budget: int
    other_errors: int
    limit: int
    spent: int
    unit: str
    open_reservations: int

    def line(self) -> str:
        return (f"{self.clients} concurrent clients: {self.admitted} calls admitted, "
                f"{self.refused_budget} refused budget_exceeded, {self.other_errors} other "
                f"errors; spent {self.spent} of {self.limit} {self.unit} "
                f"({self.open_reservations} reservations left open)")


async def budget_key(admin: KeyAdmin, model: str, budget: BudgetSpec, *, clients: int,
                     max_call_gpu_ms: int) -> tuple[str, str]:
    created = await admin.create(NewKey(
        scopes=(model,), label="load test", budgets=(budget,),
        limits=KeyLimits(rate_per_minute=600_000, burst=100_000, max_concurrency=clients,
                         max_call_gpu_ms=max_call_gpu_ms)))
    return created.record.key_id, created.secret


async def spend_to_the_budget(gate_url: str, admin: KeyAdmin, model: str, budget: BudgetSpec,
                              *, clients: int = 64, max_call_gpu_ms: int = 1000,
                              sleep_ms: int = 20, give_up_after: int = 5) -> LoadResult:
    """`clients` concurrent callers each call until the gate has refused them with
    budget_exceeded `give_up_after` times in a row (a refusal can be temporary while other
    calls' reservations are still open). Any other refusal is counted (`other_errors`) and
    ends that caller: it is not what the scenario is about, and retrying it could go on
    until the test's timeout."""
    key_id, secret = await budget_key(admin, model, budget, clients=clients,
                                      max_call_gpu_ms=max_call_gpu_ms)
    counts = {"ok": 0, "budget": 0, "other": 0}

    async def caller(client: AsyncClient, index: int) -> None:
        refusals = 0
        call = 0
        while refusals < give_up_after:
            call += 1
            try:
                await client.infer(model, {"prompt": f"client {index} call {call}. Two.",
                                           "sleep_ms": sleep_ms})
            except BudgetExceeded:
                counts["budget"] += 1
                refusals += 1
                await asyncio.sleep(0.02)
                continue
            except RateLimited:
                await asyncio.sleep(0.01)
                continue
            except APIError:
                counts["other"] += 1
                return
            counts["ok"] += 1
            refusals = 0

    async with AsyncClient(gate_url, key_id, secret, max_retries=0, timeout=60.0) as client:
        await asyncio.gather(*[caller(client, i) for i in range(clients)])
    usage = await admin.usage(key_id)
    status = usage["budgets"][0]
    money = budget.limit_micros is not None
    return LoadResult(
        clients=clients, admitted=counts["ok"], refused_budget=counts["budget"],
        other_errors=counts["other"],
        limit=int(budget.limit_micros if money else budget.limit_gpu_ms or 0),
        spent=int(status["committed_micros" if money else "committed_gpu_ms"]),
        unit="micro-units" if money else "GPU-ms",
        open_reservations=len(usage["open_reservations"]),
    )


async def usage_of(admin: KeyAdmin, key_id: str) -> dict[str, Any]:
    return await admin.usage(key_id)
