#!/usr/bin/env bash
# Write the tutorials as offline HTML pages for a course website: each notebook in notebooks/ is
# executed (in a temporary copy, so what it writes stays out of the checkout) and exported with
# live widgets that need no kernel and fetch nothing from a network, into one folder with an
# index page.
#   bash scripts/docs.sh                 # -> site/ (index.html + one page per tutorial)
#   bash scripts/docs.sh OUT nb.ipynb    # a folder of your choice, only the notebooks named
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
out="${1:-site}"
shift || true
bash scripts/setup.sh >/dev/null
[ $# -gt 0 ] && notebooks=("$@") || notebooks=(notebooks/*.ipynb)

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r notebooks/. "$work/"
for nb in "${notebooks[@]}"; do
  name=$(basename "$nb")
  [ -f "$work/$name" ] || cp "$nb" "$work/$name"
  echo "[docs] $name"
  # nbconvert writes the page beside a temporary name and we move it into place: a failed run
  # never leaves half a page in the site
  (cd "$work" && "$ROOT/.venv/bin/jupyter" nbconvert --to rnnwidgets_html --execute \
     --ExecutePreprocessor.timeout=600 --output "${name%.ipynb}.partial" --output-dir "$work/pages" \
     "$name" --log-level=WARN)
  mv -f "$work/pages/${name%.ipynb}.partial.html" "$out/${name%.ipynb}.html"
done
"$ROOT/.venv/bin/python" scripts/site_index.py "$out" "${notebooks[@]}"
echo "[docs] open $out/index.html"
