"""The package's front door: version, public names, and a light import."""
import re
import subprocess
import sys
from pathlib import Path

import rnnwidgets as rw

ROOT = Path(__file__).resolve().parents[1]


def test_version_matches_setup_and_cli():
    assert re.fullmatch(r"\d+\.\d+\.\d+", rw.__version__)
    out = subprocess.run([sys.executable, "-m", "rnnwidgets", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"rnnwidgets {rw.__version__}"
    meta = subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert meta.stdout.strip().splitlines()[-1] == rw.__version__


def test_public_names_are_the_documented_callables_and_classes():
    for name in ("trace", "explore", "gradient_flow", "record"):
        assert callable(getattr(rw, name)) and not isinstance(getattr(rw, name), type(rw)), name
    for name in ("Trace", "LayerTrace", "Explorer", "GradientFlow", "TrainingMonitor"):
        assert isinstance(getattr(rw, name), type), name
    assert callable(rw.recording)


def test_import_is_light_and_a_trace_loads_without_torch(tmp_path):
    code = ("import sys, rnnwidgets as rw, numpy as np\n"
            "assert 'torch' not in sys.modules and 'ipywidgets' not in sys.modules\n"
            "lt = rw.LayerTrace('x.l0', 'rnn', states={'h': np.ones((1, 3, 2))})\n"
            f"rw.Trace({{'x.l0': lt}}, lengths=[3]).save(r'{tmp_path}/t.npz')\n"
            f"back = rw.Trace.load(r'{tmp_path}/t.npz')\n"
            "assert back.layers['x.l0'].h.shape == (1, 3, 2) and 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
