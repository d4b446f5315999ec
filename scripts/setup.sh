#!/usr/bin/env bash
# Creates .venv and installs gpushield with every pinned dependency (requirements/lock.txt).
# Idempotent and quick when nothing changed; used by both README commands.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.gpushield-installed
want="$(cat pyproject.toml requirements/lock.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing gpushield and its pinned dependencies into .venv …" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c requirements/lock.txt -e '.[gate,worker,dev,plot]'
  echo "$want" > "$stamp"
fi
