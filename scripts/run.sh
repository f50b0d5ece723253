#!/usr/bin/env bash
# One command from a fresh clone to a trained, evaluated model:
# virtualenv + pinned requirements, `dvc pull` (corpora and any shared outputs), `dvc repro`, a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
dvc pull --allow-missing || dvc pull data/raw/*.dvc
dvc repro "$@"
python scripts/summary.py   # what was just measured; `dvc metrics show` has every number
