"""Installs rnnwidgets; builds the front-end bundle with npm when it is missing or stale."""
import re
import subprocess
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
BUNDLE = HERE / "rnnwidgets" / "static" / "widget.js"
VENDORED = HERE / "rnnwidgets" / "static" / "vendor" / "embed-amd.js"  # copied by `npm run build` for offline HTML
SOURCES = HERE / "js" / "src"
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "rnnwidgets" / "_version.py").read_text()).group(1)


def bundle_is_stale() -> bool:
    sources = [p for p in SOURCES.rglob("*") if p.is_file()] if SOURCES.exists() else []
    if not sources:  # an sdist/wheel build without the TypeScript: use the bundle that ships
        return False
    if not (BUNDLE.exists() and VENDORED.exists()):
        return True
    return max(p.stat().st_mtime for p in sources) > BUNDLE.stat().st_mtime


class BuildWithBundle(build_py):
    def run(self):
        if bundle_is_stale():
            if not (HERE / "node_modules").exists():
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
            subprocess.run(["npm", "run", "build"], cwd=HERE, check=True)
        super().run()


setup(
    name="rnnwidgets",
    version=VERSION,
    description="Jupyter widgets that show what a live PyTorch recurrent network does at every timestep.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["rnnwidgets", "rnnwidgets.*"]),
    package_data={"rnnwidgets": ["static/*.js", "static/vendor/*", "data/*"]},
    python_requires=">=3.11",
    install_requires=["torch>=2.1", "ipywidgets>=8", "anywidget", "bqplot", "numpy", "jupyterlab", "pandas", "tqdm", "scikit-learn", "scipy",
                      "zarr>=3", "fsspec", "dask[array]", "threadpoolctl"],
    # dask[distributed]: the distributed release made with the installed dask (their versions move together)
    extras_require={"distributed": ["dask[distributed]"],
                    "test": ["pytest", "pytest-timeout", "hypothesis", "nbclient", "nbformat", "nbconvert",
                             "ipykernel", "playwright", "notebook", "marimo", "pillow", "ruff==0.17.6", "mypy==2.4.1",
                             "captum", "dask[distributed]"]},
    entry_points={
        "console_scripts": ["rnnwidgets=rnnwidgets.__main__:main"],
        # `jupyter nbconvert --to rnnwidgets_html nb.ipynb`: widgets that render offline
        "nbconvert.exporters": ["rnnwidgets_html=rnnwidgets.widgets.export:OfflineHTMLExporter"],
    },
    cmdclass={"build_py": BuildWithBundle},
)
