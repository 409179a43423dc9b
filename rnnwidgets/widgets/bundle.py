"""The front-end bundle (js/src built by esbuild) that every anywidget view carries as ``_esm``."""
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent.parent / "static" / "widget.js"


def check_bundle() -> None:
    if not BUNDLE.exists():
        raise FileNotFoundError(f"the front-end bundle {BUNDLE} is missing: build it with "
                                "`bash scripts/setup.sh` (or `npm install && npm run build`)")
