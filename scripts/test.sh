#!/usr/bin/env bash
# Set up everything the tests need (first time only), then run every test: vitest (front end)
# and pytest (Python, notebooks, browser). Exits non-zero on any failure; every step runs, and
# the failed ones are listed at the end.
#   bash scripts/test.sh           # everything; the browser tests (pytest -m e2e) run in a second
#                                  # pytest process alongside the checks and the other tests: they
#                                  # mostly wait on Chromium and the kernel. Their output goes to
#                                  # artifacts/pytest-e2e.log and is shown after the other tests'.
#   bash scripts/test.sh ARGS...   # the checks, then one pytest with ARGS (-m "not e2e", tests/x.py)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
mkdir -p artifacts
# the tests write stores of up to about 1 GB under the temporary folder (pytest removes each passing
# test's folder as it ends): say so up front where the disk is nearly full, which fails tests far away
free_kib=$(df -Pk "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $4}')
if [ "${free_kib:-0}" -lt $((3 * 1024 * 1024)) ]; then
  echo "[test] warning: only $((free_kib / 1024)) MiB free under ${TMPDIR:-/tmp}; the tests need about 3 GiB"
fi
PYTEST=(.venv/bin/python -m pytest)
E2E_LOG=artifacts/pytest-e2e.log
failed=()
# step NAME COMMAND...: runs it, says how long it took, and remembers a failure
step() {
  local name=$1 start=$SECONDS; shift
  echo "[test] $name"
  "$@" || failed+=("$name")
  echo "[test] $name: $((SECONDS - start)) s"
}

# vitest first, on its own: its tests have a 5 s timeout each, and a few (whole views in jsdom)
# come near it on a busy 2-core machine
step "vitest" npm test --silent
if [ $# = 0 ]; then
  echo "[test] pytest -m e2e (browser tests): started in the background, output in $E2E_LOG"
  e2e_start=$SECONDS
  # only tests/e2e is collected: collecting all of tests/ to deselect the other tests cost this
  # process minutes of a busy 2-core machine's time (the other pytest imports them anyway)
  "${PYTEST[@]}" -m e2e tests/e2e > "$E2E_LOG" 2>&1 &
  e2e_pid=$!
  # stopped early (Ctrl-C, a signal, a failed step under set -e): stop the browser tests too; they
  # take SIGTERM as Ctrl-C (tests/e2e/conftest.py), stopping their server and browser
  trap 'kill -TERM "$e2e_pid" 2>/dev/null || true' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
step "typecheck" npm run -s typecheck
step "lint (biome)" npm run -s lint
step "ruff" .venv/bin/ruff check rnnwidgets tests benchmarks scripts
step "mypy" .venv/bin/mypy
if [ $# = 0 ]; then
  step "pytest -m 'not e2e'" "${PYTEST[@]}" -m "not e2e"
  echo "[test] waiting for pytest -m e2e (browser tests)"
  e2e_status=0
  wait "$e2e_pid" || e2e_status=$?
  trap - EXIT INT TERM
  echo "[test] pytest -m e2e (browser tests), from $E2E_LOG:"
  cat "$E2E_LOG"
  [ $e2e_status = 0 ] || failed+=("pytest -m e2e")
  echo "[test] pytest -m e2e: $((SECONDS - e2e_start)) s"
else
  step "pytest $*" "${PYTEST[@]}" "$@"
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '[test] FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "[test] all passed in $SECONDS s"
