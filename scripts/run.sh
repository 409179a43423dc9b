#!/usr/bin/env bash
# Set up (first time only) and start JupyterLab on the quickstart notebook, on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
port="${PORT:-8888}"
token="${JUPYTER_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')}"
root_flag=""
[ "$(id -u)" = 0 ] && root_flag="--allow-root"   # Lab refuses root without it
echo
echo "  Open: http://127.0.0.1:$port/lab/tree/notebooks/01_quickstart.ipynb?token=$token"
echo
exec .venv/bin/jupyter lab --no-browser --ip=127.0.0.1 --port="$port" --ServerApp.port_retries=0 $root_flag \
  --IdentityProvider.token="$token" --ServerApp.root_dir="$PWD"
