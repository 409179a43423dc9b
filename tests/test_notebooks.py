"""Every notebook in notebooks/ runs headless, top to bottom, without an error.

Each runs in a temp copy of the folder (whatever it writes stays there) on a kernel of this
interpreter, so CI tests the notebooks against the package it just installed.
"""
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
from notebook_outputs import cell_texts, same_text, static_outputs  # noqa: E402

KERNEL = "rnnwidgets-tests"
CELL_TIMEOUT_S = 300  # generous for a loaded CI machine; the tutorials themselves take seconds


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    """A kernelspec that starts this interpreter (the venv's), whatever `python` is on PATH."""
    folder = tmp_path_factory.mktemp("kernels")
    (folder / KERNEL).mkdir()
    (folder / KERNEL / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rnnwidgets tests", "language": "python"}))
    return KernelSpecManager(kernel_dirs=[str(folder)])


def test_there_are_notebooks():
    assert any(p.name == "01_quickstart.ipynb" for p in NOTEBOOKS)


def _stream_text(nb) -> str:
    return "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)


def check_quickstart(nb):
    """The tutorial's claim holds in its own run: one unit follows the true depth closely."""
    found = re.search(r"follows the depth: correlation ([+-]\d\.\d\d)", _stream_text(nb))
    assert found and abs(float(found.group(1))) >= 0.9, _stream_text(nb)[-2000:]
    # its encoder–decoder: each layer on its own steps, its states the model's own
    text = _stream_text(nb)
    assert "encoder.gru.l0: 7 steps, labelled the cat sat on the mat ." in text, text[-2000:]
    assert "decoder.gru.l0: 10 steps, labelled le chat était assis sur le tapis . <eos> <pad>" in text, text[-2000:]
    gap = re.search(r"vs the model's own: largest difference (\S+)", text)
    assert gap and float(gap.group(1)) < 1e-5, text[-2000:]


def check_patterns(nb):
    """The pattern selected on one string finds the deep steps of the whole dataset, and little else."""
    text = _stream_text(nb)
    precision = re.search(r"matched steps at depth >= 3: (\d+\.\d)%", text)
    recall = re.search(r"steps at depth >= 3 that are matched: (\d+\.\d)%", text)
    assert precision and recall, text[-2000:]
    assert float(precision.group(1)) >= 95 and float(recall.group(1)) >= 95, text[-2000:]


def check_vanishing(nb):
    """The tutorial's verdicts come from its own run: the tanh RNN's gradient vanishes, the LSTM's survives."""
    text = _stream_text(nb)
    rnn = re.search(r"tanh RNN +(\w+) +first/last ratio", text)
    lstm = re.search(r"LSTM +(\w+) +first/last ratio", text)
    assert rnn and rnn.group(1) == "vanishing" and lstm and lstm.group(1) == "healthy", text[-2000:]


def check_what_if(nb):
    """Its claims hold in its own run: knocking out the counter breaks the brackets, patching it raises P(')')."""
    text = _stream_text(nb)
    trained = re.search(r"as trained: +(\d+\.\d)% of 200 generated strings balance", text)
    clamped = re.search(r"counter clamped to 0: +(\d+\.\d)% of 200 generated strings balance", text)
    assert trained and clamped and float(clamped.group(1)) < float(trained.group(1)) - 50, text[-2000:]
    patched = re.search(r"P\('\)' next\) after '[()ab]+': (\d\.\d+), with unit \d+'s count patched in from "
                        r"'[()ab]+': (\d\.\d+)", text)
    assert patched and float(patched.group(2)) > 3 * float(patched.group(1)), text[-2000:]
    assert "prediction after '(()((a(b': ')'" in text, text[-2000:]


CHECKS = {"01_quickstart.ipynb": check_quickstart, "02_vanishing_gradients.ipynb": check_vanishing,
          "03_patterns.ipynb": check_patterns, "04_what_if.ipynb": check_what_if}


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_error(source, kernel_specs, tmp_path):
    folder = tmp_path / "notebooks"
    shutil.copytree(source.parent, folder)
    nb = nbformat.read(folder / source.name, as_version=4)
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = NotebookClient(nb, km=manager, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(folder)}})
    client.execute()  # raises CellExecutionError, with the failing cell and traceback, on any error
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    assert all(cell.execution_count for cell in nb.cells if cell.cell_type == "code")
    CHECKS.get(source.name, lambda _: None)(nb)
    check_committed_outputs(source, nb)


def check_committed_outputs(source: Path, executed) -> None:
    """What a reader sees in the committed notebook (no kernel) is what its cells print now."""
    committed, produced = cell_texts(nbformat.read(source, as_version=4)), cell_texts(static_outputs(executed))
    fix = f"re-run `.venv/bin/python scripts/notebook_outputs.py notebooks/{source.name}` and commit it"
    assert len(committed) == len(produced), f"{source.name}: the committed cells differ from the run; {fix}"
    for i, (was, now) in enumerate(zip(committed, produced)):
        same, why = same_text(was, now)
        assert same, f"{source.name}, code cell {i + 1}: the committed output says otherwise ({why}); {fix}"
