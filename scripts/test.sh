#!/usr/bin/env bash
# The test suite: unit tests on fixtures plus the end-to-end `dvc repro` on a slice of the real corpora.
# The browser tests drive Debian's headless Chromium: installed here when missing (as root, with
# apt-get), else the suite stops first with one line saying what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
  else
    echo "error: the browser tests need chromium and chromedriver: sudo apt-get install chromium chromium-driver" >&2
    exit 2
  fi
fi
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
python -m pytest -q -p no:cacheprovider "$@"
