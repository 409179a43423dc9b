"""Capture's modules import only downward: no cycle, counting imports inside functions, and no
widget code."""
import ast
from pathlib import Path

import rnnwidgets

PACKAGE = Path(rnnwidgets.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set:
    """Every rnnwidgets module ``path`` imports, anywhere in the file (functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnwidgets")}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            if target and target.startswith("rnnwidgets"):
                if node.module:
                    found.add(target)
                else:   # `from . import gradients`: the submodule (its package is already importing)
                    found |= {f"{target}.{a.name}" for a in node.names}
    return found


def graph() -> dict:
    files = [*sorted((PACKAGE / "capture").glob("*.py")), PACKAGE / "tracedata.py", PACKAGE / "kinds.py"]
    modules = {module_name(f): f for f in files}
    return {name: {m for m in imports_of(f) if m in modules and m != name} for name, f in modules.items()}


def test_capture_has_no_import_cycle():
    edges = graph()
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join(path + [nxt])}"
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_the_graph_sees_function_level_imports(tmp_path):
    source = tmp_path / "rnnwidgets" / "capture" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from .api import trace\n    from . import gradients\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "rnnwidgets"
    try:
        assert {"rnnwidgets.capture.api", "rnnwidgets.capture.gradients"} <= imports_of(source)
    finally:
        PACKAGE = saved


def test_capture_imports_no_widget_code():
    for path in (PACKAGE / "capture").glob("*.py"):
        assert not any(m.startswith("rnnwidgets.widgets") for m in imports_of(path)), path.name
