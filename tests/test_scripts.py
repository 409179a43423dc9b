"""The front door: `bash scripts/run.sh` prints the address and how to stop, nothing else; the
package builds through the backend pyproject.toml declares."""
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except OSError:
        return False


def test_run_prints_the_address_and_how_to_stop_and_stops_on_ctrl_c(tmp_path):
    # a checkout whose setup is done: this run.sh, this environment, a set-up step with nothing to do
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "run.sh", checkout / "scripts" / "run.sh")
    (checkout / "scripts" / "setup.sh").write_text("exit 0\n")
    (checkout / ".venv").symlink_to(sys.prefix)   # the environment running the tests
    port, token = free_port(), "a" * 32
    env = {**os.environ, "PORT": str(port), "JUPYTER_TOKEN": token, "RNNWIDGETS_LAB_LOG": str(tmp_path / "lab.log")}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                 "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(tmp_path / name.lower())
    run = subprocess.Popen(["bash", str(checkout / "scripts" / "run.sh")], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, start_new_session=True)
    try:
        printed = ""
        deadline = time.monotonic() + 180
        with selectors.DefaultSelector() as waiting:   # never blocks past the deadline on a silent script
            waiting.register(run.stdout, selectors.EVENT_READ)
            while "  Stop:" not in printed or not printed.endswith("\n\n"):
                assert time.monotonic() < deadline and run.poll() is None, printed
                if waiting.select(timeout=1):
                    printed += os.read(run.stdout.fileno(), 4096).decode()
        lines = printed.splitlines()
        url = f"http://127.0.0.1:{port}/lab/tree/notebooks/01_quickstart.ipynb?token={token}"
        assert [line.strip() for line in lines if line.strip()] == [
            f"Open: {url}", f"Stop: press Ctrl-C        (server log: {tmp_path / 'lab.log'})"]
        assert answers(f"http://127.0.0.1:{port}/api/status?token={token}")
        assert "ServerApp" in (tmp_path / "lab.log").read_text()   # the server's messages went to its log
        os.killpg(run.pid, signal.SIGINT)   # Ctrl-C in the terminal: to the whole foreground group
        out, err = (text.decode() for text in run.communicate(timeout=60))
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0 and out.strip() == "JupyterLab stopped." and err == "", (out, err)
    assert not answers(f"http://127.0.0.1:{port}/api/status?token={token}")


def test_run_says_why_when_the_server_cannot_start(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "run.sh", checkout / "scripts" / "run.sh")
    (checkout / "scripts" / "setup.sh").write_text("exit 0\n")
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (checkout / ".venv" / "bin" / "jupyter").write_text("#!/bin/sh\necho 'cannot bind the port' >&2\nexit 1\n")
    (checkout / ".venv" / "bin" / "jupyter").chmod(0o755)
    env = {**os.environ, "PORT": str(free_port()), "RNNWIDGETS_LAB_LOG": str(tmp_path / "lab.log")}
    done = subprocess.run(["bash", str(checkout / "scripts" / "run.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert re.match(r"JupyterLab did not start \(is port \d+ in use\? set PORT=\.\.\.\)\. The end of its log, .*lab.log:\n"
                    r"cannot bind the port\n$", done.stderr), done.stderr


def test_pyproject_declares_the_build_and_the_wheel_carries_the_bundle(tmp_path):
    import tomllib
    import zipfile

    import rnnwidgets as rw

    system = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
    assert system["build-backend"] == "setuptools.build_meta"
    assert any(r.startswith("setuptools") for r in system["requires"])
    # a copy of the checkout (tracked files and the built bundle), built through the declared backend
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    files += [str(p.relative_to(REPO)) for p in (REPO / "rnnwidgets" / "static").rglob("*") if p.is_file()]
    for name in files + ["pyproject.toml"]:
        if (REPO / name).is_file():
            (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tmp_path / "src" / name)
    code = (f"import importlib; backend = importlib.import_module({system['build-backend']!r}); "
            f"print(backend.build_wheel({str(tmp_path / 'dist')!r}))")
    (tmp_path / "dist").mkdir()
    built = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "src", capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = tmp_path / "dist" / built.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"rnnwidgets/static/widget.js", "rnnwidgets/static/vendor/embed-amd.js", "rnnwidgets/fileio.py"} <= names
    assert wheel.name.startswith(f"rnnwidgets-{rw.__version__}-")
    # installed into a clean environment: the package and its bundle come from the wheel alone
    # (its dependencies from this test environment, read through a path file, so the test stays fast)
    env_dir = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    site = next((env_dir / "lib").glob("python3.*")) / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                    "--target", str(site), str(wheel)], check=True, timeout=300, capture_output=True)
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "zz_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    check = ("import rnnwidgets, sys; rnnwidgets.explore\n"
             "from rnnwidgets.widgets.bundle import BUNDLE, check_bundle\n"
             "check_bundle(); print(rnnwidgets.__file__); print(BUNDLE)")
    ran = subprocess.run([str(env_dir / "bin" / "python"), "-c", check], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert ran.returncode == 0, ran.stderr[-3000:]
    package_file, bundle = ran.stdout.split()
    assert Path(package_file).is_relative_to(site) and Path(bundle).is_relative_to(site), ran.stdout


def _notebook(heading: str, code: str) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(heading), nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


def docs_checkout(tmp_path: Path) -> Path:
    """A checkout whose setup is done: docs.sh and its index writer, this environment, no notebooks yet."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("docs.sh", "site_index.py"):
        shutil.copy(REPO / "scripts" / name, checkout / "scripts" / name)
    (checkout / "scripts" / "setup.sh").write_text("exit 0\n")
    (checkout / ".venv").symlink_to(sys.prefix)
    (checkout / "notebooks").mkdir()
    return checkout


def test_docs_writes_offline_pages_and_an_index_that_treats_titles_as_data(tmp_path):
    checkout = docs_checkout(tmp_path)
    view = ("import numpy as np, rnnwidgets as rw\n"
            "lt = rw.LayerTrace('rnn.l0', 'rnn', states={'h': np.tanh(np.arange(24.0).reshape(1, 6, 4) / 9)})\n"
            "with open('written.txt', 'w') as f: f.write('stays in the copy')\n"
            "rw.explore(rw.Trace({'rnn.l0': lt}, lengths=[6]))")
    (checkout / "notebooks" / "tiny.ipynb").write_text(_notebook("# <img src=x onerror=alert(1)> & tiny", view))
    before = sorted(p.name for p in (checkout / "notebooks").iterdir())
    done = subprocess.run(["bash", "scripts/docs.sh", str(tmp_path / "site")], cwd=checkout, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "tiny.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in page and "rnn.l0" in page   # the live view's state
    assert not re.search(r"<script[^>]*\ssrc=[\"']?(https?:)?//", page)   # nothing fetched from a network
    index = (tmp_path / "site" / "index.html").read_text()
    assert '<a href="tiny.html">&lt;img src=x onerror=alert(1)&gt; &amp; tiny</a>' in index
    assert sorted(p.name for p in (checkout / "notebooks").iterdir()) == before   # ran in a copy


def test_docs_stops_at_a_failing_notebook_and_leaves_no_page_for_it(tmp_path):
    checkout = docs_checkout(tmp_path)
    (checkout / "notebooks" / "broken.ipynb").write_text(_notebook("# Broken", "raise ValueError('a broken cell')"))
    done = subprocess.run(["bash", "scripts/docs.sh", str(tmp_path / "site")], cwd=checkout, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode != 0 and "a broken cell" in done.stderr
    assert not (tmp_path / "site" / "broken.html").exists() and not (tmp_path / "site" / "index.html").exists()


def test_notebook_outputs_keep_what_a_static_viewer_shows():
    import nbformat

    sys.path.insert(0, str(REPO / "scripts"))
    from notebook_outputs import cell_texts, same_text, static_outputs

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="loss 0.123\n"),
        nbformat.v4.new_output("stream", name="stderr", text="100%|#####| 3/3\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "Explorer(...)",
                                                     "application/vnd.jupyter.widget-view+json": {"model_id": "a"}}),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "b"}}),
    ]
    kept = static_outputs(nb)
    assert "widgets" not in kept.metadata and "widgets" in nb.metadata   # the executed notebook is untouched
    assert [o.output_type for o in kept.cells[0].outputs] == ["stream", "display_data"]
    assert set(kept.cells[0].outputs[1].data) == {"image/png"}   # a widget's repr is not for readers
    assert cell_texts(kept) == ["loss 0.123\n"]
    table = nbformat.v4.new_output("execute_result", data={"text/plain": "   a  b\n0  1  2"}, execution_count=1)
    nb.cells[0].outputs = [table]
    assert cell_texts(static_outputs(nb)) == ["   a  b\n0  1  2\n"]
    assert same_text("loss 0.123 in 3.1 s", "loss 0.124 in 9 s") == (True, "")
    assert same_text("unit 17", "unit 18") == (False, "17 became 18")
    assert same_text("loss 0.123", "loss 0.150") == (False, "0.123 became 0.150")
    assert same_text("ratio 1.2e-04", "ratio 1.9e-04") == (False, "1.2e-04 became 1.9e-04")
    assert not same_text("a stable point", "a saddle point")[0]
    assert same_text("[0.978 0.98  0.984]", "[0.978 0.981 0.984]") == (True, "")   # numpy's padding
    assert not same_text("unit 2 on", "unit 2  \non")[0]
