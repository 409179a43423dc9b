#!/usr/bin/env bash
# Set up (first time only) and start JupyterLab on the quickstart notebook, on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
port="${PORT:-8888}"
root_flag=""
[ "$(id -u)" = 0 ] && root_flag="--allow-root"
echo "[run] JupyterLab on http://127.0.0.1:$port/lab/tree/notebooks/01_quickstart.ipynb (the URL with its token follows)"
exec .venv/bin/jupyter lab --no-browser --ip=127.0.0.1 --port="$port" $root_flag \
  --ServerApp.root_dir="$PWD" notebooks/01_quickstart.ipynb
