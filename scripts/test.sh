#!/usr/bin/env bash
# Every check the project has: lint, types, and the whole test suite (unit, corpora, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_node.sh
echo "== ruff" && .venv/bin/ruff check .
echo "== mypy" && .venv/bin/mypy
echo "== pytest" && .venv/bin/pytest -q "$@"
