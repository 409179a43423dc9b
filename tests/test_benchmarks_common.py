"""benchmarks/common.py: the torch benchmarks' shared command line, torch set-up and timer."""
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import common  # noqa: E402


def test_the_command_line_has_each_benchmarks_defaults_and_takes_more(torch_threads):
    p = common.parser("usage", steps=200, repeats=5)
    p.add_argument("--device", default="cpu")
    args = common.setup(p, [])
    assert (args.steps, args.batch, args.repeats, args.threads, args.device) == (200, 1, 5, 1, "cpu")
    args = common.setup(p, ["--steps", "7", "--batch", "2", "--threads", "2", "--device", "meta"])
    assert (args.steps, args.batch, args.repeats, args.threads, args.device) == (7, 2, 5, 2, "meta")
    assert torch.get_num_threads() == 2
    with pytest.raises(SystemExit):
        common.setup(p, ["--steps", "many"])


def test_setup_seeds_torch_with_zero(torch_threads):
    torch.manual_seed(123)
    common.setup(common.parser(None, steps=1), [])
    drawn = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(4))


def test_seconds_times_one_call():
    calls = []
    assert common.seconds(lambda: calls.append(time.sleep(0.02))) >= 0.02
    assert calls == [None]
