#!/usr/bin/env bash
# Set up (first time only) and start JupyterLab on the quickstart notebook, on 127.0.0.1.
# Prints the address and how to stop; the server's own messages go to a log file it names.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
port="${PORT:-8888}"
token="${JUPYTER_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')}"
log="${RNNWIDGETS_LAB_LOG:-${TMPDIR:-/tmp}/rnnwidgets-jupyterlab-$port.log}"
root_flag=""
[ "$(id -u)" = 0 ] && root_flag="--allow-root"   # Lab refuses root without it

.venv/bin/jupyter lab --no-browser --ip=127.0.0.1 --port="$port" --ServerApp.port_retries=0 $root_flag \
  --IdentityProvider.token="$token" --ServerApp.root_dir="$PWD" </dev/null >"$log" 2>&1 &
server=$!
stop() {
  trap - INT TERM
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  echo "  JupyterLab stopped."
  exit 0
}
trap stop INT TERM

# the address is printed once the server answers, or the reason it did not start
until .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$port/api/status?token=$token" 2>/dev/null; do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "JupyterLab did not start (is port $port in use? set PORT=...). The end of its log, $log:" >&2
    tail -n 15 "$log" >&2
    exit 1
  fi
  sleep 0.3
done
echo
echo "  Open: http://127.0.0.1:$port/lab/tree/notebooks/01_quickstart.ipynb?token=$token"
echo "  Stop: press Ctrl-C        (server log: $log)"
echo
wait "$server"
