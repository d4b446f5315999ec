"""`gpushield usage` on a real local store: the table, the JSON and the PNG plot."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpushield.cli.keys import parse_budget
from gpushield.cli.main import app
from gpushield_edge.keyguard import AdmitRequest, SettleRequest
from gpushield_edge.runtime_local.app import open_key_guard
from gpushield_edge.runtime_local.state import StateDir
from gpushield_wire import algorithms, credentials

runner = CliRunner()


def _spend(state: Path, key_id: str, secret: str, calls: list[int], start: float,
           account: tuple[dict[str, object], ...] = ()) -> None:
    """Admissions and settlements through the key's real guard (signed with its secret)."""
    core = open_key_guard(StateDir(state), {})
    raw = credentials.parse_secret(secret)
    for index, used_ms in enumerate(calls):
        now = start + index * 600
        base = f"usage test {index}".encode()
        request = AdmitRequest(
            key_id=key_id, alg=algorithms.HMAC_SHA256, signature_base=base,
            signature=hmac.new(raw, base, hashlib.sha256).digest(), model="summarize",
            nonce=secrets.token_hex(8), nonce_expires_at=now + 300, now=now, lease_ttl_s=60,
            micros_per_gpu_s=500, account_budgets=account)
        result = asyncio.run(core.admit(request))
        assert result.outcome == "admitted"
        core.settle(SettleRequest(key_id, str(result.lease_id), None, None, now + 1, ran=True,
                                  used_ms=used_ms))


def _create(state: Path, *extra: str) -> tuple[str, str]:
    result = runner.invoke(app, ["keys", "create", "--model", "summarize", "--json",
                                 "--state-dir", str(state), *extra])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    return document["key_id"], document["secret"]


def test_budget_option_parses_units_and_money() -> None:
    spec = parse_budget("month:gpu=3600s,money=12.5,tz=Europe/Paris,id=team")
    assert (spec.budget_id, spec.unit, spec.limit_gpu_ms, spec.limit_micros, spec.tz) == (
        "team", "month", 3_600_000, 12_500_000, "Europe/Paris")
    assert parse_budget("hour:gpu=60,rolling").rolling is True
    with pytest.raises(ValueError, match="unknown part"):
        parse_budget("day:gpus=1")


def test_usage_table_json_and_plot(tmp_path: Path) -> None:
    state = tmp_path / "state"
    key_a, secret_a = _create(state, "--label", "team a", "--budget", "day:gpu=60,money=1",
                             "--max-call-seconds", "15")
    key_b, secret_b = _create(state, "--label", "batch")
    start = time.time() - 3600
    _spend(state, key_a, secret_a, [4000, 12_000, 8000], start)
    _spend(state, key_b, secret_b, [30_000, 1000], start)

    table = runner.invoke(app, ["usage", "--state-dir", str(state)])
    assert table.exit_code == 0, table.output
    for text in (key_a, key_b, "team a", "24.0 s of 60.0 s", "no budget", "0.0120 of 1.0000"):
        assert text in table.output

    as_json = runner.invoke(app, ["usage", key_a, "--json", "--state-dir", str(state)])
    [entry] = json.loads(as_json.output)
    [budget] = entry["usage"]["budgets"]
    assert (budget["committed_gpu_ms"], budget["committed_micros"]) == (24_000, 12_000)
    assert len(entry["usage"]["history"]) == 3

    png = tmp_path / "spend.png"
    plotted = runner.invoke(app, ["usage", "--plot", str(png), "--state-dir", str(state)])
    assert plotted.exit_code == 0, plotted.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_usage_shows_account_budgets_and_budget_changes_are_audited(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "gpushield.toml"
    config.write_text('[[budgets.account]]\nunit = "day"\nlimit_micros = 1000000\n'
                      'chunk_micros = 200000\n', encoding="utf-8")
    account = ({"budget_id": "day0", "unit": "day", "limit_micros": 1_000_000,
                "chunk_micros": 200_000},)
    key_id, secret = _create(state, "--max-call-seconds", "10")
    _spend(state, key_id, secret, [2000, 2000], time.time() - 60, account)
    shown = runner.invoke(app, ["usage", "--config", str(config), "--state-dir", str(state)])
    assert shown.exit_code == 0, shown.output
    assert "account budgets (all keys)" in shown.output
    assert "0.0020 of 1.0000" in shown.output  # two calls at 1000 µ each
    assert "0.2000" in shown.output  # the chunk handed out to the key

    changed = runner.invoke(app, ["keys", "budget", key_id, "--budget", "day:money=0.5",
                                  "--state-dir", str(state)])
    assert changed.exit_code == 0, changed.output
    restored = runner.invoke(app, ["keys", "restore", key_id, "--state-dir", str(state)])
    assert restored.exit_code == 0, restored.output
    audit = [json.loads(line) for line in
             (state / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [e["extra"]["admin_action"] for e in audit] == [
        "create", "budgets", "status:active"]
    [entry] = json.loads(runner.invoke(app, ["usage", key_id, "--json", "--state-dir",
                                             str(state)]).output)
    assert entry["usage"]["budgets"][0]["limit_micros"] == 500_000
