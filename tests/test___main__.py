"""``python -m rnnwidgets`` (rnnwidgets/__main__.py): help, the version, and a bad option refused.
(tests/test_package.py runs ``--version`` in a subprocess against setup.py's version.)"""
import pytest

from rnnwidgets import __version__
from rnnwidgets.__main__ import main


def test_without_arguments_it_prints_its_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")    # argparse wraps its help to the terminal's width
    main([])
    out = capsys.readouterr().out
    assert out.startswith("usage: rnnwidgets [-h] [--version]")
    assert "Jupyter widgets for PyTorch recurrent networks." in out and "--version" in out


def test_version_prints_and_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"rnnwidgets {__version__}\n"


def test_an_unknown_option_is_refused_with_usage(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--trace", "model.pt"])
    captured = capsys.readouterr()
    assert exit.value.code == 2 and captured.out == ""
    assert captured.err.startswith("usage: rnnwidgets") and "unrecognized arguments: --trace model.pt" in captured.err
