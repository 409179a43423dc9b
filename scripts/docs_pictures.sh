#!/usr/bin/env bash
# The pictures of docs/views.md: the browser test that checks every view's look in JupyterLab
# Light and Dark (tests/e2e/test_visual_language_browser.py) screenshots each view; with
# RW_PICTURES set it also writes the Light ones, reduced to 256 colours, into that folder.
#   bash scripts/docs_pictures.sh            # -> docs/img/*.png (and every picture in artifacts/)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test >/dev/null
mkdir -p artifacts
RW_PICTURES="${RW_PICTURES:-docs/img}" exec .venv/bin/python -m pytest -q tests/e2e/test_visual_language_browser.py "$@"
