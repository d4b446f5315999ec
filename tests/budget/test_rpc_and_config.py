"""The guard's RPC surface for budgets (what a Durable Object serves, JSON both ways) and the
cost sections of the gate config."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.clock import FixedClock

from gpushield_edge.admin.service import KeyAdminError, NewKey
from gpushield_edge.config import parse_config
from gpushield_edge.keyguard.budget import BudgetSpec, Price
from gpushield_edge.keyguard.rpc import GuardEndpoint, RemoteKeyGuard, call_guard
from gpushield_edge.keyguard.settlement import SettlePolicy, SettleRequest
from gpushield_edge.runtime_local.app import load_config_document

from .guardkit import QUIET, T0, Guard


def endpoint_call(endpoint: GuardEndpoint) -> Any:
    async def call(key_id: str, method: str, payload: str) -> str:
        return await endpoint.dispatch(method, payload)

    return call


def test_budgets_admit_settle_and_usage_over_rpc(guard: Guard) -> None:
    endpoint = GuardEndpoint(guard.core, FixedClock(T0 + 5))
    assert {"settle", "usage", "set_budgets", "release_unused"} <= set(endpoint.METHODS)
    call = endpoint_call(endpoint)
    spec = NewKey(scopes=("*",), budgets=(BudgetSpec("day", "day", limit_gpu_ms=61_000),))
    created = guard.run(call_guard(call, "k", "create", {"key_id": "gsk_rpcbudgettest0001",
                                                          "spec": spec.to_dict()}))
    key_id = created["key"]["key_id"]
    from gpushield_wire import credentials

    guard.secrets[key_id] = credentials.parse_secret(created["secret"])
    remote = RemoteKeyGuard(call)
    admitted = guard.run(remote.admit(guard.request(key_id, T0, price=Price(1000, 10))))
    assert (admitted.outcome, admitted.reserved_gpu_ms, admitted.reserved_micros) == (
        "admitted", 60_000, 60_000)
    settled = guard.run(remote.settle(SettleRequest(
        key_id, str(admitted.lease_id), None, None, T0 + 1, ran=True, used_ms=1234,
        policy=SettlePolicy())))
    assert (settled.applied, settled.charged_gpu_ms, settled.charged_micros) == (
        True, 1234, 1234)
    again = guard.run(remote.settle(SettleRequest(
        key_id, str(admitted.lease_id), None, None, T0 + 2, ran=True, used_ms=1,
        policy=QUIET)))
    assert again.applied is False
    refused = guard.run(remote.admit(guard.request(key_id, T0 + 3)))
    assert refused.code == "budget_exceeded" and refused.budget["budget"] == "day"
    usage = guard.run(call_guard(call, key_id, "usage", {"key_id": key_id}))
    assert usage["budgets"][0]["committed_gpu_ms"] == 1234
    guard.run(call_guard(call, key_id, "set_budgets", {"key_id": key_id, "budgets": []}))
    assert guard.run(remote.admit(guard.request(key_id, T0 + 4))).outcome == "admitted"


def test_new_key_budgets_are_validated() -> None:
    with pytest.raises(KeyAdminError, match="budgets"):
        NewKey.from_dict({"scopes": ["m"], "budgets": [{"unit": "week", "limit_gpu_ms": 1}]})
    with pytest.raises(KeyAdminError, match="limit"):
        NewKey.from_dict({"scopes": ["m"], "budgets": [{"unit": "day"}]})
    with pytest.raises(KeyAdminError, match="time zone"):
        NewKey.from_dict({"scopes": ["m"], "budgets": [{"unit": "day", "tz": "Nowhere/Land",
                                                          "limit_micros": 5}]})
    spec = NewKey.from_dict({"scopes": ["m"], "budgets": [
        {"unit": "month", "tz": "Europe/Paris", "limit_micros": 5}]})
    assert NewKey.from_dict(spec.to_dict()) == spec


def _config(**sections: Any) -> Any:
    document = load_config_document(None)
    document.update(sections)
    return parse_config(document, {"HOOK": "https://hooks.example/abc"})


def test_cost_config_prices_budgets_alerts_and_anomaly() -> None:
    config = _config(
        prices={"backends": {"runpod": {"micros_per_gpu_s": 300}},
                "models": {"summarize": {"micros_per_gpu_s": 400, "min_micros": 100}}},
        budgets={"account": [{"unit": "month", "tz": "Asia/Tokyo", "limit_micros": 10**8}]},
        alerts={"thresholds": [75, 100], "webhooks": [{"url_env": "HOOK", "format": "slack"}]},
        anomaly={"z": 8.0, "max_models_per_hour": 3},
    )
    costs = config.costs
    assert costs.price_for("summarize") == Price(400, 100)
    assert costs.account_budgets[0].tz == "Asia/Tokyo"
    assert costs.settle_policy.thresholds == (75, 100)
    assert costs.settle_policy.anomaly.z == 8.0
    assert "hooks.example" not in repr(costs.webhooks)  # the URL is a secret


@pytest.mark.parametrize(("sections", "message"), [
    ({"prices": {"model": {}}}, "unknown settings"),
    ({"prices": {"models": {"nope": {"micros_per_gpu_s": 1}}}}, "unknown models"),
    ({"prices": {"models": {"summarize": {"micros_per_gpu_s": 0.5}}}}, "whole number"),
    ({"budgets": {"account": [{"unit": "fortnight", "limit_micros": 1}]}}, "unit"),
    ({"alerts": {"webhooks": [{"url_env": "MISSING"}]}}, "not set"),
    ({"alerts": {"webhooks": [{"url": "ftp://x"}]}}, "http"),
    ({"alerts": {"thresholds": [0]}}, "percentages"),
    ({"anomaly": {"zz": 1}}, "unknown settings"),
    ({"anomaly": {"alpha": 2.0}}, "out of range"),
])
def test_bad_cost_config_is_rejected(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(**sections)


def test_the_documented_cost_sections_parse_when_uncommented() -> None:
    import tomllib

    from gpushield_edge.runtime_local.app import default_config_text

    text = default_config_text()
    block = text[text.index("# -- Cost controls"):].splitlines()[1:]
    uncommented = "\n".join(line[2:] for line in block
                            if line.startswith("# ") and not line.startswith("# Prices")
                            and not line.startswith("# minimum") and not line.startswith(
                                "# Account"))
    sections = tomllib.loads(uncommented)
    config = parse_config({**load_config_document(None), **sections},
                          {"GPUSHIELD_ALERT_WEBHOOK": "https://hooks.example/x"})
    assert config.costs.price_for("summarize") == Price(400, 100)
    assert config.costs.account_budgets[0].chunk_micros == 5_000_000
