#!/usr/bin/env bash
# Set up everything rnnwidgets needs in this checkout: .venv (torch pinned to the CPU wheel),
# the package in editable mode, and the built front-end bundle. Safe to run again: each step is
# skipped when what it makes is already up to date.
#   bash scripts/setup.sh          # to run
#   bash scripts/setup.sh --test   # plus test dependencies (npm dev packages, chromium, pytest...)
# The node packages + bundle and Debian's chromium are made in the background while pip installs
# torch (independent steps: on a fresh clone this saves their time); each one's output is shown
# only when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WITH_TESTS=0
[ "${1:-}" = "--test" ] && WITH_TESTS=1
TORCH_PIN="torch==2.13.0"   # the CPU wheel on this machine; unpinned torch pulls a CUDA build

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
# pip -q still prints one warning per unused local index folder on this kind of machine
pip_install() { $PY -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
declare -A PIDS=()
# in_background NAME FUNCTION: runs FUNCTION in a subshell (errexit on), its output to a log
in_background() { ( "$2" ) > "$LOGS/$1.log" 2>&1 & PIDS[$1]=$!; }
# finish NAME: waits for it; on failure shows its output and stops
finish() {
  [ -n "${PIDS[$1]:-}" ] || return 0
  if ! wait "${PIDS[$1]}"; then
    say "$1 failed:"; cat "$LOGS/$1.log"; exit 1
  fi
  unset "PIDS[$1]"
}

# node packages (esbuild, typescript, vitest) from the committed lock file, then the front-end
# bundle (and the files offline HTML inlines), when missing or older than its sources
front_end() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  if [ ! -f rnnwidgets/static/widget.js ] || [ ! -f rnnwidgets/static/vendor/embed-amd.js ] || [ -n "$(find js/src -newer rnnwidgets/static/widget.js -type f | head -1)" ]; then
    npm run -s build
  fi
}

# the browser for the end-to-end tests: Debian's chromium
install_chromium() {
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
}

# 1. the browser (background)
if [ $WITH_TESTS = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (apt, in the background)"
  in_background chromium install_chromium
fi

# 2. the front end (background)
say "node packages and front-end bundle (in the background; skipped when up to date)"
in_background front_end front_end

# 3. Python virtual environment, torch first and pinned
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
PY=.venv/bin/python
# (installed = its metadata is there: reading it takes milliseconds, importing torch seconds)
if ! $PY -c "import importlib.metadata as m; m.version('torch')" 2>/dev/null; then
  say "installing $TORCH_PIN"
  pip_install "$TORCH_PIN"
fi

# 4. the package itself (editable), with test extras when asked; after the bundle, which
#    setup.py's build step would otherwise make itself
finish front_end
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

finish chromium
say "ready: $ROOT/.venv"
