"""The index page of the tutorials' offline site (scripts/docs.sh): one link per page, titled by
the notebook's first heading. Titles are data: escaped, never markup.

    python scripts/site_index.py OUT notebooks/01_quickstart.ipynb ...
"""
from __future__ import annotations

import html
import json
import os
import sys
import tempfile
from pathlib import Path

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rnnwidgets tutorials</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:3em auto;padding:0 1em}}
li{{margin:.4em 0}}</style></head>
<body><h1>rnnwidgets tutorials</h1>
<p>Each page is a tutorial run from top to bottom, with its widgets live: scrub them in the page,
no kernel or network needed.</p>
<ol>
{items}
</ol></body></html>
"""


def title(notebook: Path) -> str:
    """The notebook's first Markdown heading, else its file name."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        for line in (source if isinstance(source, str) else "".join(source)).splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip() or notebook.stem
    return notebook.stem


def write_index(out: Path, notebooks: list[Path]) -> Path:
    items = "\n".join(
        f'<li><a href="{html.escape(nb.stem + ".html", quote=True)}">{html.escape(title(nb))}</a></li>'
        for nb in notebooks)
    target = out / "index.html"
    fd, partial = tempfile.mkstemp(dir=out, prefix=".index-", suffix=".html")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(PAGE.format(items=items))
        os.chmod(partial, 0o644)  # a web page: readable by the server, unlike mkstemp's 0600
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python scripts/site_index.py OUT NOTEBOOK.ipynb ...")
    print(write_index(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]))
