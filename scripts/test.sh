#!/usr/bin/env bash
# The test suite: unit tests on fixtures plus the end-to-end `dvc repro` on a slice of the real corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
python -m pytest -q -p no:cacheprovider "$@"
