#!/usr/bin/env bash
# The main job: a real RunPod worker, the local gate in front of it, and the SDK calling through.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gpushield demo "$@"
