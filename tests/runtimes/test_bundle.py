"""What `wrangler deploy` would upload: exactly the intended modules, nothing else.

The bundle is the dry-run output of the real wrangler (offline), the same directory the
Pyodide suite serves. It must hold the entry point, the gate and the contract (with their data
files) and the vendored Workers SDK — no tests, no CPython-only runtime, no bytecode, no
secrets — and fit the Workers size limit.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from tests.support.workers_runtime import ROOT

from gpushield_edge.waf import rules

# Workers' limit on the compressed upload (free plan; paid plans allow 10 MB).
FREE_PLAN_LIMIT_BYTES = 3 * 1024 * 1024
SHIPPED_SUFFIXES = (".py", ".json", ".txt")
SECRET_SHAPES = re.compile(rb"gss_[A-Za-z0-9_-]{43}|-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _files(bundle: Path) -> set[str]:
    return {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()}


def _package_files(source: Path, name: str, skip: set[str]) -> set[str]:
    found = set()
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if (path.is_file() and path.suffix in SHIPPED_SUFFIXES
                and "__pycache__" not in relative.parts and not skip & set(relative.parts)):
            found.add(f"{name}/{relative}")
    return found


def test_bundle_holds_exactly_the_intended_modules(worker_bundle: Path) -> None:
    files = _files(worker_bundle)
    gate = _package_files(ROOT / "edge" / "gpushield_edge", "gpushield_edge", {"runtime_local"})
    contract = _package_files(ROOT / "shared" / "gpushield_wire", "gpushield_wire", set())
    vendored = {f for f in files if f.startswith("python_modules/")}
    # The WAF rules' regex analysis, done by the build (see waf.rules.DERIVED_FILE).
    derived = "gpushield_edge/waf/derived.json"
    assert files - vendored == {"entry.py", "README.md", derived} | gate | contract
    assert "python_modules/workers/__init__.py" in vendored
    assert "python_modules/workers/entrypoints.py" in vendored
    # Budgets reset at midnight in any IANA zone; Pyodide has no system time-zone database.
    assert "python_modules/tzdata/zoneinfo/Europe/Paris" in vendored
    assert "gpushield_edge/runtime_workers/app.py" in gate


def test_bundle_has_no_tests_bytecode_local_runtime_or_secrets(worker_bundle: Path) -> None:
    for name in _files(worker_bundle):
        parts = Path(name).parts
        assert not {"tests", "__pycache__", "runtime_local", ".gpushield"} & set(parts), name
        assert not name.endswith((".pyc", ".toml", ".dist-info")), name
        assert ".dist-info" not in name, name
        assert not SECRET_SHAPES.search((worker_bundle / name).read_bytes()), name


def test_bundle_fits_the_workers_size_limit(worker_bundle: Path) -> None:
    compressed = sum(
        len(gzip.compress((worker_bundle / name).read_bytes()))
        for name in _files(worker_bundle) if name != "README.md"
    )
    assert compressed < FREE_PLAN_LIMIT_BYTES


def test_bundle_ships_the_waf_rules_analysis_for_every_pattern(worker_bundle: Path) -> None:
    """A pattern missing from it would only cost time (it is derived on the spot), but the
    build is meant to spare every new isolate that work: all of them are there, and each is
    exactly what deriving it now gives."""
    document = json.loads((worker_bundle / "gpushield_edge/waf/derived.json").read_text())
    assert document["format"] == rules.DERIVATION_FORMAT
    patterns = {rule.source for rule in rules.load_rules() if rule.source is not None}
    assert set(document["patterns"]) == patterns
    for pattern in patterns:
        assert document["patterns"][pattern] == json.loads(json.dumps(rules.derive(pattern)))
