"""`python -m rnnwidgets --version`."""
import argparse

from ._version import __version__


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rnnwidgets", description="Jupyter widgets for PyTorch recurrent networks.")
    parser.add_argument("--version", action="version", version=f"rnnwidgets {__version__}")
    parser.parse_args(argv)
    parser.print_help()


if __name__ == "__main__":
    main()
