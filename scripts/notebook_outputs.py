"""The tutorials' committed outputs: what a reader on a code host (no kernel) sees.

    .venv/bin/python scripts/notebook_outputs.py [notebooks/NAME.ipynb ...]

Runs each notebook top to bottom (in a temporary copy of its folder, on this interpreter's
kernel) and writes it back with the outputs a static viewer can show: printed text, plain-text
results and images (each view's still PNG), without the live widget state (it is large and,
outside Jupyter, shows nothing). tests/test_notebooks.py runs the notebooks the same way and
fails when a committed notebook's text no longer matches what its cells print (``same_text``).
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

KEPT = ("text/plain", "image/png")  # what GitHub and nbviewer render without widget code
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KERNEL = "rnnwidgets-outputs"
CELL_TIMEOUT_S = 600


def static_outputs(nb):
    """A copy of executed ``nb`` with only what a static viewer shows: stdout text, the plain-text
    and PNG parts of results and displays (of a widget, its still PNG only); no widget state, no
    stderr (progress bars, warnings), no per-cell execution metadata."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        kept = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stdout":
                kept.append(out)
            elif out.output_type in ("execute_result", "display_data"):
                # a widget's text is its Python repr: a reader gets its still image or nothing
                kept_types = ("image/png",) if WIDGET_VIEW in out.data else KEPT
                data = {k: v for k, v in out.data.items() if k in kept_types}
                if data:
                    out.data, out.metadata = data, {}
                    kept.append(out)
        cell.outputs = kept
    return nb


def cell_texts(nb) -> list[str]:
    """Per code cell, the text a reader sees: stdout and plain-text results, in order."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stdout":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data") and "text/plain" in out.data:
                parts.append(out.data["text/plain"] + "\n")
        texts.append("".join(parts))
    return texts


# A number in printed text; one followed by "s" or "ms" as a word is a duration, never compared.
NUMBER = re.compile(r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?P<duration>\s?m?s\b)?")
MEMORY_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def last_digit(number: str) -> float:
    """The value of one unit in the last digit printed: 0.01 for "1.23", 1e-5 for "1.2e-04"."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def same_text(committed: str, produced: str) -> tuple[bool, str]:
    """Whether two printed texts say the same: identical words, numbers equal to the precision
    printed (within 1% or two units of the last printed digit: a loss may differ in its last
    digit between machines), integers exactly, durations ignored, runs of spaces as one (numpy
    pads a column to its widest number). Returns (same, the first difference)."""
    a, b = (MEMORY_ADDRESS.sub(" at 0x…", t) for t in (committed, produced))
    words_a, words_b = ([re.sub(r" +", " ", w) for w in NUMBER.sub("#", t).split("#")] for t in (a, b))
    if words_a != words_b:
        for wa, wb in zip(words_a, words_b):
            if wa != wb:
                return False, f"text {wa!r} became {wb!r}"
        return False, f"{len(words_a) - 1} numbers became {len(words_b) - 1}"
    for ma, mb in zip(NUMBER.finditer(a), NUMBER.finditer(b)):
        if ma["duration"] or mb["duration"]:
            continue
        x, y = float(ma["value"]), float(mb["value"])
        if not re.search(r"[.eE]", ma["value"]):  # an integer (a unit, a count, a step) is exact
            if x != y:
                return False, f"{ma['value']} became {mb['value']}"
            continue
        if abs(x - y) > max(0.01 * max(abs(x), abs(y)), 2 * last_digit(ma["value"])):
            return False, f"{ma['value']} became {mb['value']}"
    return True, ""


def kernel_specs(folder: Path):
    """A kernelspec that starts this interpreter, whatever `python` is on PATH."""
    from jupyter_client.kernelspec import KernelSpecManager

    (folder / KERNEL).mkdir(parents=True, exist_ok=True)
    (folder / KERNEL / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rnnwidgets", "language": "python"}))
    return KernelSpecManager(kernel_dirs=[str(folder)])


def execute(source: Path, workdir: Path, specs, timeout: int = CELL_TIMEOUT_S):
    """``source`` run top to bottom in a copy of its folder under ``workdir``: the executed notebook."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    folder = workdir / "notebooks"
    if not folder.exists():
        shutil.copytree(source.parent, folder)
    nb = nbformat.read(folder / source.name, as_version=4)
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    NotebookClient(nb, km=manager, timeout=timeout, resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def write_atomically(nb, path: Path) -> None:
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".ipynb")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def main(paths: list[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    notebooks = [Path(p).resolve() for p in paths] or sorted((root / "notebooks").glob("*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        specs = kernel_specs(Path(tmp) / "kernels")
        for i, source in enumerate(notebooks):
            print(f"[outputs] {source.name}", flush=True)
            executed = execute(source, Path(tmp) / f"run{i}", specs)
            write_atomically(static_outputs(executed), source)


if __name__ == "__main__":
    main(sys.argv[1:])
