"""rw.trace(..., quantities=, layers=, steps=): a subset of the full trace, exactly its arrays (and
the state fed into a window of steps), for every capture path; gates and unselected layers not
computed where that saves work; saved and reopened, and shown by the Explorer."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnwidgets as rw
from rnnwidgets import Trace
from rnnwidgets.capture import fused, trace
from rnnwidgets.capture.convert import HostCopies
from rnnwidgets.capture.select import KNOWN, parse, selects
from rnnwidgets.kinds import states_of

MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def assert_subset(part: Trace, full: Trace, start: int = 0):
    """Every array of ``part`` is the full trace's over the layer's window, bit for bit."""
    for name, lt in part.layers.items():
        whole = full.layers[name]
        lo, hi = lt.meta.get("steps", [0, whole.steps])
        assert lo == start and hi - lo == lt.steps
        for group in ("states", "gates", "grads", "tracks"):
            for key, array in getattr(lt, group).items():
                np.testing.assert_array_equal(array, getattr(whole, group)[key][:, lo:hi], err_msg=f"{name} {key}")
        for key, first in lt.initial.items():
            np.testing.assert_array_equal(first, window_initial(full, name, key, lo, hi), err_msg=f"{name} {key}")
    for field in ("outputs", "inputs"):
        if getattr(full, field) is not None and getattr(full, field).shape[1] > start:
            np.testing.assert_array_equal(getattr(part, field), getattr(full, field)[:, start:start + part.steps])


def window_initial(full: Trace, name: str, key: str, lo: int, hi: int) -> np.ndarray:
    """The state fed into step ``lo`` (forward) or into the last valid step of [lo, hi) (reverse),
    element by element from the full trace."""
    lt = full.layers[name]
    lengths = full.layer_lengths(name)
    out = lt.initial[key].copy()
    for b in range(lt.batch):
        if not lt.reverse and lo > 0:
            out[b] = lt.states[key][b, lo - 1]
        if lt.reverse and lengths[b] > hi:
            out[b] = lt.states[key][b, hi]
    return out


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batch", [1, 3, 40])   # 40: our step loop where the CPU runs one (fused.py)
def test_fused_modules_give_exactly_the_full_traces_arrays(kind, batch):
    torch.manual_seed(0)
    model = MODULES[kind](4, 6, num_layers=2, bidirectional=True)
    x = torch.randn(9, batch, 4)
    full = trace(model, x)
    gate = {"lstm": "forget", "gru": "update", "rnn": "h"}[kind]
    for kwargs in [dict(quantities=["h"]), dict(quantities=list(states_of(kind))), dict(quantities=[gate]),
                   dict(layers=["lstm.l1" if kind == "lstm" else f"{kind}.l1"]),
                   dict(layers=[f"{kind}.l0.reverse"], quantities=["h", gate]),
                   dict(steps=slice(3, 7)), dict(steps=range(0, 4)), dict(steps=slice(5, None), layers=[kind]),
                   dict(steps=range(2, 100), quantities=[gate])]:
        part = trace(model, x, **kwargs)
        assert_subset(part, full, start=kwargs["steps"].start if "steps" in kwargs else 0)
        assert part.meta["selection"]["quantities"] == (sorted(set(kwargs["quantities"])) if "quantities" in kwargs
                                                        else None)
        for lt in part.layers.values():
            assert set(lt.quantities()) == set(kwargs.get("quantities", full.layers[lt.name].quantities()))
    assert list(trace(model, x, layers=[f"{kind}.l0"]).layers) == [f"{kind}.l0"]   # not its reverse
    assert list(trace(model, x, layers=[f"{kind}.l1.reverse", f"{kind}.l0"]).layers) == [f"{kind}.l0",
                                                                                        f"{kind}.l1.reverse"]


@pytest.mark.parametrize("batch", [1, 32])
def test_a_one_direction_lstm_read_from_the_kernels_workspace_is_cut_alike(batch):
    torch.manual_seed(1)
    model = nn.LSTM(5, 8, num_layers=2)
    x = torch.randn(12, batch, 5)
    full = trace(model, x)
    for kwargs in [dict(quantities=["h", "c"]), dict(quantities=["output"], steps=slice(4, 9)),
                   dict(layers=["lstm.l1"], steps=slice(0, 1))]:
        assert_subset(trace(model, x, **kwargs), full, start=kwargs["steps"].start if "steps" in kwargs else 0)


def test_a_packed_bidirectional_layer_starts_its_window_from_the_state_that_enters_it():
    torch.manual_seed(2)
    model = nn.LSTM(3, 4, bidirectional=True)
    x = torch.randn(8, 3, 3)
    packed = pack_padded_sequence(x, torch.tensor([8, 5, 2]), enforce_sorted=False)
    full = trace(model, packed)
    part = trace(model, packed, steps=slice(3, 6))
    assert_subset(part, full, start=3)
    assert part.lengths.tolist() == [3, 2, 0]
    back = part.layers["lstm.l0.reverse"]
    np.testing.assert_array_equal(back.initial["h"][0], full.layers["lstm.l0.reverse"].h[0, 6])  # enters from 6
    np.testing.assert_array_equal(back.initial["h"][1], full.layers["lstm.l0.reverse"].initial["h"][1])


def test_gates_and_unselected_layers_are_not_recomputed(monkeypatch):
    seen = []
    recompute = fused.lstm_gates

    def lstm_gates(direction, c0):
        seen.append(direction.name)
        recompute(direction, c0)

    monkeypatch.setattr(fused, "lstm_gates", lstm_gates)
    torch.manual_seed(3)
    model, x = nn.LSTM(4, 6, 2, bidirectional=True), torch.randn(5, 1, 4)   # the kernel runs it, gates recomputed
    full = trace(model, x)
    assert seen == ["lstm.l0", "lstm.l0.reverse", "lstm.l1", "lstm.l1.reverse"]
    seen.clear()
    assert_subset(trace(model, x, quantities=["h"]), full)
    assert seen == []
    assert_subset(trace(model, x, quantities=["c"], layers=["lstm.l1.reverse"]), full)
    assert seen == ["lstm.l1", "lstm.l1.reverse"]    # one run computes both directions


class CellLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(3, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        state, outs = None, []
        for x_t in x:
            state = self.cell(x_t, state)
            outs.append(self.head(state[0]))
        return torch.stack(outs)


def test_cells_in_a_user_loop_are_cut_from_the_whole_trace():
    torch.manual_seed(4)
    model, x = CellLoop(), torch.randn(7, 2, 3)
    full = trace(model, x)
    for kwargs in [dict(quantities=["c", "input"]), dict(steps=slice(2, 5)), dict(layers=["cell"], steps=range(1, 3))]:
        assert_subset(trace(model, x, **kwargs), full, start=kwargs["steps"].start if "steps" in kwargs else 0)
    with pytest.raises(ValueError, match=r"rw.trace: layers: expected names of layers or of modules holding them, "
                                         r"among \['cell'\], got 'lstm'"):
        trace(model, x, layers=["lstm"])


class Seq2Seq(nn.Module):
    """An encoder over the source and a decoder run one step at a time (joined along time) or
    on the whole target at once (``whole``)."""

    def __init__(self, whole: bool):
        super().__init__()
        self.whole = whole
        self.encoder = nn.GRU(3, 4, batch_first=True)
        self.decoder = nn.LSTM(3, 4, batch_first=True)

    def forward(self, source, target):
        _, h = self.encoder(source)
        state = (h, torch.zeros_like(h))
        if self.whole:
            return self.decoder(target, state)[0]
        outs = []
        for t in range(target.shape[1]):
            out, state = self.decoder(target[:, t:t + 1], state)
            outs.append(out)
        return torch.cat(outs, 1)


@pytest.mark.parametrize("whole", [True, False])
def test_an_encoder_decoder_is_cut_on_each_layers_own_time_axis(whole):
    torch.manual_seed(5)
    model = Seq2Seq(whole)
    source, target = torch.randn(2, 7, 3), torch.randn(2, 5, 3)
    full = trace(model, source, kwargs={"target": target})
    assert {lt.steps for lt in full.layers.values()} == {7, 5}
    for kwargs in [dict(layers=["decoder"]), dict(steps=slice(1, 4)), dict(steps=slice(2, None), quantities=["h"]),
                   dict(layers=["encoder"], steps=slice(5, 7))]:
        part = trace(model, source, kwargs={"target": target}, **kwargs)
        assert_subset(part, full, start=kwargs["steps"].start if "steps" in kwargs else 0)
    part = trace(model, source, kwargs={"target": target}, layers=["encoder"])   # outputs: the decoder's, kept
    assert full.outputs is not None and list(part.layers) == ["encoder.l0"]
    np.testing.assert_array_equal(part.outputs, full.outputs)
    with pytest.raises(ValueError, match=r"^rw.trace: steps: the window starts at step 6, past the end of 'decoder.l0', "
                                         r"which runs 5 steps \(0–4\); expected a start below 5, or layers= leaving "
                                         r"'decoder.l0' out$"):
        trace(model, source, kwargs={"target": target}, steps=slice(6, 7))


def test_gradients_and_edits_are_the_whole_runs_only_cut():
    torch.manual_seed(6)
    model = nn.LSTM(3, 5, 2, proj_size=2)
    x = torch.randn(8, 2, 3)

    def loss(out):
        return out[0].square().sum()

    full = trace(model, x, loss=loss)
    part = trace(model, x, loss=loss, quantities=["h"], steps=slice(2, 6), layers=["lstm.l0"])
    assert_subset(part, full, start=2)
    assert set(part.layers["lstm.l0"].grads) == {"h", "m"}   # m, the gradient before the projection, goes with h
    assert part.param_grads == full.param_grads
    edits = [rw.clamp("lstm.l0", "h", units=[1], steps=None, value=0.0)]
    full = trace(model, x, edits=edits)
    part = trace(model, x, edits=edits, quantities=["c", "forget"], steps=slice(3, None))
    assert_subset(part, full, start=3)
    assert part.meta["edits"] == full.meta["edits"]


def test_a_step_module_is_cut_from_the_whole_trace():
    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.GRUCell(3, 4)

        def forward(self, x, h):
            h = self.cell(x, h)
            return h, h

    torch.manual_seed(7)
    model, xs = Step(), [torch.randn(2, 3) for _ in range(6)]
    full = trace(model, xs, hidden=torch.zeros(2, 4))
    part = trace(model, xs, hidden=torch.zeros(2, 4), quantities=["update"], steps=slice(1, 4))
    assert_subset(part, full, start=1)


def test_bad_values_say_what_was_expected():
    model, x = nn.GRU(3, 4, 2), torch.randn(5, 1, 3)
    with pytest.raises(ValueError, match=r"quantities: expected names among \['h', 'c', 'input', 'forget', 'cell', "
                                         r"'output', 'reset', 'update', 'new'\], got 'gates'"):
        trace(model, x, quantities=["h", "gates"])
    with pytest.raises(TypeError, match="quantities: expected a non-empty list or tuple of state or gate names"):
        trace(model, x, quantities="h")
    with pytest.raises(TypeError, match="layers: expected a non-empty list or tuple of layer or module names"):
        trace(model, x, layers=[])
    with pytest.raises(ValueError, match=r"layers: expected names of layers or of modules holding them, among "
                                         r"\['gru.l0', 'gru.l1'\], got 'gru.l2'"):
        trace(model, x, layers=["gru.l0", "gru.l2"])
    for steps in (slice(3, 3), slice(0, 4, 2), range(4, 1, -1), slice(1.5, 3)):
        with pytest.raises(ValueError, match=r"steps: expected a slice or range of consecutive steps from 0 on"):
            trace(model, x, steps=steps)
    # the sentences that say the exact fix (timeaxis.step_window; tests/test_timeaxis.py has each)
    with pytest.raises(TypeError, match=r"^rw.trace: steps: expected a slice or range, got the list \[1, 2\], "
                                        r"which could mean single steps or a window; pass steps=slice\(1, 2\)"):
        trace(model, x, steps=[1, 2])
    with pytest.raises(ValueError, match=r"^rw.trace: steps: expected step numbers counted from 0 on"):
        trace(model, x, steps=slice(-2, None))
    with pytest.raises(TypeError, match=r"^rw.trace: steps: expected a slice or range, got the single step 3"):
        trace(model, x, steps=np.int32(3))
    with pytest.raises(ValueError, match=r"^rw.trace: steps: the window starts at step 9, past the end of 'gru.l0', "
                                         r"which runs 5 steps"):
        trace(model, x, steps=slice(9, 12))
    with pytest.raises(ValueError, match=r"quantities \['c'\] leave layer 'gru.l0' \(gru\) with nothing"):
        trace(model, x, quantities=["c"])
    assert "c" in KNOWN and parse("rw.trace") is None


def test_layer_keys_select_a_layer_its_later_calls_or_a_module():
    assert selects("lstm.l0", "lstm.l0") and selects("lstm.l0", "lstm.l0@2") and not selects("lstm.l0@1", "lstm.l0@2")
    assert not selects("lstm.l0", "lstm.l0.reverse") and selects("lstm.l0.reverse", "lstm.l0.reverse@1")
    assert selects("lstm", "lstm.l1.reverse") and selects("enc", "enc.rnn.l0") and not selects("enc", "encoder.l0")
    assert selects("cell", "cell") and not selects("cel", "cell")


def test_a_selected_trace_saves_reopens_and_is_explored(tmp_path):
    torch.manual_seed(8)
    model, x = nn.LSTM(3, 5, 2), torch.randn(10, 2, 3)
    part = trace(model, x, quantities=["h", "c"], steps=slice(2, 8), tokens=[list("abcdefghij")] * 2)
    assert part.tokens == [list("cdefgh")] * 2
    back = Trace.load(part.save(tmp_path / "part.npz"))
    assert back.meta["selection"] == {"quantities": ["c", "h"], "layers": None, "steps": [2, 8]}
    for name, lt in part.layers.items():
        assert back.layers[name].meta["steps"] == [2, 8]
        for key, array in lt.quantities().items():
            np.testing.assert_array_equal(back.layers[name].quantities()[key], array)
        for key, array in lt.initial.items():
            np.testing.assert_array_equal(back.layers[name].initial[key], array)
    explorer = rw.explore(back)
    assert explorer.state.quantities("lstm.l1") == ["h", "c"]
    layers = {entry["name"]: entry for entry in explorer.view.index["layers"]}
    assert set(layers) == {"lstm.l0", "lstm.l1"} and explorer.view.index["steps"] == 6
    gates_only = trace(model, x, quantities=["forget"])     # no h at all
    explorer = rw.explore(gates_only)
    assert explorer.state.quantities("lstm.l1") == ["forget"] and explorer.view.quantity == "forget"


def test_explore_passes_the_selection_to_the_trace():
    torch.manual_seed(9)
    model, x = nn.GRU(3, 4), torch.randn(6, 1, 3)
    explorer = rw.explore(model, x, quantities=["h"], steps=slice(1, 5))
    lt = explorer.state.trace.layers["gru.l0"]
    assert list(lt.quantities()) == ["h"] and lt.steps == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_copies_to_host_memory_are_exact_and_the_trace_cut_alike():
    torch.manual_seed(10)
    first = torch.randn(50, 7, 9, device="cuda")
    second = torch.randn(30, 4, 5, device="cuda", dtype=torch.float64)
    want = [first.transpose(0, 1).cpu().numpy(), second[:, 1:3].float().cpu().numpy()]
    copies = HostCopies()
    got = [copies.steps(first), copies.array(second[:, 1:3])]   # a transposed view; a strided view and a dtype
    del first   # the copy keeps the tensor's memory from reuse until it is done
    torch.randn(50, 7, 9, device="cuda").mul_(0)                # work queued behind it, reusing memory
    copies.wait()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    model = nn.LSTM(4, 6, 2, bidirectional=True).cuda()
    x = torch.randn(20, 3, 4, device="cuda")
    full = trace(model, x)
    for kwargs in [dict(quantities=["h", "c"]), dict(quantities=["h"], steps=slice(5, 15)),
                   dict(layers=["lstm.l1.reverse"], steps=slice(0, 3))]:
        assert_subset(trace(model, x, **kwargs), full, start=kwargs["steps"].start if "steps" in kwargs else 0)
