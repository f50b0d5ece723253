#!/usr/bin/env bash
# The test suite: unit tests on fixtures plus the end-to-end `dvc repro` on a slice of the real corpora.
# The browser tests drive Debian's headless Chromium: installed here when missing (as root, with
# apt-get), else the suite stops first with one line saying what to install.
# `scripts/test.sh --fast [pytest args]`: the fast tier only (`-m "not slow"`, a few minutes): no
# end-to-end, browser, serve-subprocess, encoder-export, real-corpus or signal tests, so no Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=false
if [ "${1:-}" = "--fast" ]; then
  fast=true
  shift
fi
if ! $fast && { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; }; then
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
ruff check --quiet .   # lint first (pyproject.toml [tool.ruff]; the version pinned in requirements.txt)
if $fast; then
  python -m pytest -q -p no:cacheprovider -m "not slow" "$@"
else
  python -m pytest -q -p no:cacheprovider "$@"
fi
