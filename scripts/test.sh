#!/usr/bin/env bash
# Set up everything the tests need (first time only), then run every test: vitest (front end)
# and pytest (Python, notebooks, browser). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo "[test] typecheck + lint + vitest"
npm run -s typecheck
npm run -s lint
npm test --silent
echo "[test] lint + types"
.venv/bin/ruff check rnnwidgets tests benchmarks scripts
.venv/bin/mypy
echo "[test] pytest"
mkdir -p artifacts
exec .venv/bin/python -m pytest "$@"
