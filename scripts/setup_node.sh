#!/usr/bin/env bash
# Installs the pinned Node tooling (wrangler, pyodide, sql.js) from package-lock.json for the
# Worker's bundle and its Pyodide test harness. Idempotent; the test command runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "error: Node.js 20 is needed for the Worker tests" >&2; exit 1; }
stamp=node_modules/.gpushield-installed
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing the pinned Node tooling (npm ci) …" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
