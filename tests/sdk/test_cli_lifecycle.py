"""`gpushield keys rotate|quarantine|restore` on the local store and on a gate (`--gate`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpushield.cli.main import app
from gpushield.devtools.gate_server import serve_gate
from gpushield_edge.runtime_local.app import load_config_document
from gpushield_wire import credentials

runner = CliRunner()


def keys(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = runner.invoke(app, ["keys", *args], env=env)
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.output)
    return document


def run_lifecycle(where: list[str], env: dict[str, str] | None = None) -> None:
    created = keys("create", "-m", "summarize", "--token-ttl", "5m", "--json", *where, env=env)
    key_id = str(created["key_id"])
    assert created["limits"]["token_ttl_s"] == 300  # type: ignore[index]
    rotated = keys("rotate", key_id, "--grace", "1h", "--json", *where, env=env)
    assert rotated["secret"] != created["secret"]
    assert str(rotated["secret"]).startswith("gss_")
    assert rotated["version"] == 2
    assert abs(float(rotated["previous_valid_until"]) - (time.time() + 3600)) < 30  # type: ignore[arg-type]
    result = runner.invoke(app, ["keys", "quarantine", key_id, *where], env=env)
    assert result.exit_code == 0 and "quarantined" in result.output
    shown = keys("show", key_id, "--json", *where, env=env)
    assert shown["status"] == "quarantined"
    assert "secret" not in shown
    result = runner.invoke(app, ["keys", "restore", key_id, *where], env=env)
    assert result.exit_code == 0
    assert keys("show", key_id, "--json", *where, env=env)["status"] == "active"


def test_lifecycle_on_the_local_store(tmp_path: Path) -> None:
    run_lifecycle(["--state-dir", str(tmp_path / "state")])
    lines = (tmp_path / "state" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    actions = [json.loads(line)["extra"]["admin_action"] for line in lines]
    assert actions == ["create", "rotate", "status:quarantined", "status:active"]


@pytest.mark.slow
def test_lifecycle_through_a_gate(tmp_path: Path) -> None:
    admin_secret = credentials.format_secret(credentials.new_secret())
    with serve_gate(load_config_document(None), tmp_path / "gate",
                    environ={"GPUSHIELD_ADMIN_SECRET": admin_secret}) as gate:
        run_lifecycle(["--gate", gate.url], env={"GPUSHIELD_ADMIN_SECRET": admin_secret})
        audit = [json.loads(line) for line in
                 gate.state.audit_log.read_text(encoding="utf-8").splitlines()]
    actions = [e["extra"]["admin_action"] for e in audit if "extra" in e
               and "admin_action" in e["extra"]]
    assert {"create", "rotate", "status:quarantined", "status:active"} <= set(actions)
    assert admin_secret not in json.dumps(audit)
