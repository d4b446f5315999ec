#!/usr/bin/env bash
# Every check the project has: lint, types, and the whole test suite (unit, corpora, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_node.sh
echo "== ruff" && .venv/bin/ruff check .
echo "== mypy" && .venv/bin/mypy
mkdir -p .tmp
echo "== harness self-tests (Node, Pyodide)" && \
  node --experimental-wasm-stack-switching --test tests/workers_harness/selftest/ >.tmp/harness-selftest.log 2>&1 \
  || { cat .tmp/harness-selftest.log; exit 1; }
tail -n 8 .tmp/harness-selftest.log | grep -E "^# (pass|fail)"
echo "== pytest" && .venv/bin/pytest -q "$@"
