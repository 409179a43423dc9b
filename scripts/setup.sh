#!/usr/bin/env bash
# Set up everything rnnwidgets needs in this checkout: .venv (torch pinned to the CPU wheel),
# the package in editable mode, and the built front-end bundle. Safe to run again: each step is
# skipped when what it makes is already up to date.
#   bash scripts/setup.sh          # to run
#   bash scripts/setup.sh --test   # plus test dependencies (npm dev packages, chromium, pytest...)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WITH_TESTS=0
[ "${1:-}" = "--test" ] && WITH_TESTS=1
TORCH_PIN="torch==2.13.0"   # the CPU wheel on this machine; unpinned torch pulls a CUDA build

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
# pip -q still prints one warning per unused local index folder on this kind of machine
pip_install() { $PY -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }

# 1. Python virtual environment, torch first and pinned
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
PY=.venv/bin/python
if ! $PY -c "import torch" 2>/dev/null; then
  say "installing $TORCH_PIN"
  pip_install "$TORCH_PIN"
fi

# 2. node packages (esbuild, typescript, vitest): from the committed lock file
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 3. the front-end bundle (and the files offline HTML inlines), when missing or older than its sources
if [ ! -f rnnwidgets/static/widget.js ] || [ ! -f rnnwidgets/static/vendor/embed-amd.js ] || [ -n "$(find js/src -newer rnnwidgets/static/widget.js -type f | head -1)" ]; then
  say "building the front end"
  npm run -s build
fi

# 4. the package itself (editable), with test extras when asked
extras=""
[ $WITH_TESTS = 1 ] && extras="[test]"
stamp=".venv/.rnnwidgets-installed$extras"
done_stamp=$stamp   # an install with test extras is also the plain install
[ -z "$extras" ] && [ -f ".venv/.rnnwidgets-installed[test]" ] && done_stamp=".venv/.rnnwidgets-installed[test]"
if [ ! -f "$done_stamp" ] || [ setup.py -nt "$done_stamp" ]; then
  say "installing rnnwidgets$extras"
  pip_install -e ".$extras"
  touch "$stamp"
fi

# 5. the browser for the end-to-end tests: Debian's chromium
if [ $WITH_TESTS = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (apt)"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
say "ready: $ROOT/.venv"
