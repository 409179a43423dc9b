"""The layers flow one way: capture (torch) -> Trace -> analyses -> views -> front end.

Views never import torch, not even inside a function: a saved Trace is explored and shown with
torch absent. And no module imports one that (directly or through others) imports it back,
counting the imports inside functions, which a plain import of the package never runs.
"""
import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rnnwidgets"
VIEWS = PACKAGE / "widgets"

def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node) -> bool:
    test = node.test
    return isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING")


def imports_of(path: Path, modules: set) -> set:
    """The package's modules ``path`` imports anywhere in its body (functions included), except
    under ``if TYPE_CHECKING:``, which never runs."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            connect(v)
    return out


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "rnnwidgets.capture.live" in graph["rnnwidgets.entrypoints"]   # inside _live()
    assert "rnnwidgets.capture" in graph["rnnwidgets.capture.live"]       # from . import trace
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_views_never_import_torch_or_capture():
    graph = import_graph()
    for path in VIEWS.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        names = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names} | {node.module or "" for node in ast.walk(tree)
                                              if isinstance(node, ast.ImportFrom)}
        assert not any(n == "torch" or n.startswith("torch.") for n in names), path
        assert not any(m.startswith("rnnwidgets.capture") for m in graph[module_name(path)]), path


def run_python(script: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                         timeout=300, cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_exploring_a_saved_trace_imports_only_what_it_shows(tmp_path):
    """The first Explorer of a session is drawn sooner without charts, the HTML exporter or the
    other views and analyses (each module imported is compiled and run while the cell waits)."""
    shown = run_python(f"""
        import sys
        sys.path.insert(0, {str(PACKAGE.parent / "tests")!r})
        import wire_fixture
        import rnnwidgets as rw
        path = wire_fixture.fixture_trace().save({str(tmp_path / "t.npz")!r})
        rw.explore(rw.Trace.load(path))._repr_mimebundle_()
        unused = ("torch", "bqplot", "nbconvert", "rnnwidgets.dataset", "rnnwidgets.patterns",
                  "rnnwidgets.dynamics_analysis", "rnnwidgets.widgets.compare", "rnnwidgets.widgets.patterns",
                  "rnnwidgets.widgets.what_if", "rnnwidgets.widgets.marimo_display", "rnnwidgets.comparison",
                  "rnnwidgets.widgets.gradient_flow", "rnnwidgets.widgets.chart", "rnnwidgets.widgets.export",
                  "rnnwidgets.widgets.still_views",
                  "numpy.ma", "asyncio")   # numpy.ma: np.percentile imports it, ranges.percentile does not
        print(sorted(m for m in unused if m in sys.modules))
    """)
    assert shown == "[]"


def test_exploring_a_saved_trace_leaves_torch_unimported(tmp_path):
    shown = run_python(f"""
        import sys
        sys.path.insert(0, {str(PACKAGE.parent / "tests")!r})
        import wire_fixture
        import rnnwidgets as rw
        import rnnwidgets.widgets
        from rnnwidgets.widgets import explorer, gradient_flow, grid, monitor, patterns, payload, still
        path = wire_fixture.fixture_trace().save({str(tmp_path / "t.npz")!r})
        ex = rw.explore(rw.Trace.load(path))
        bundle = ex._repr_mimebundle_()
        assert "image/png" in bundle and ex.view.index["layers"], bundle.keys()
        print("torch" in sys.modules)
    """)
    assert shown == "False"


def test_every_module_has_its_test_module():
    """Tests mirror the code: rnnwidgets/X.py -> tests/test_X.py, rnnwidgets/capture/X.py ->
    tests/test_capture_X.py (likewise widgets/ and data/)."""
    tests = Path(__file__).resolve().parent
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if path.name in ("__init__.py", "_version.py") or parts[0] == "static":
            continue
        wanted = "test_" + "_".join(parts[:-1] + (path.stem,)) + ".py"
        if not (tests / wanted).is_file():
            missing.append(f"{'/'.join(parts)} -> tests/{wanted}")
    assert not missing, "modules without their test module: " + ", ".join(missing)
