"""rw.trace with edits= (capture/edited.py): the edited Trace and the model's output equal an
unrolled reference loop (tests/reference_rnn.py) with the same intervention, for fused modules in
every configuration, cells in the user's loop and step modules; the model is left as found."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from model_state import assert_untouched, snapshot
from reference_rnn import Reference
from test_capture_fused import GATES, make_case, own_output
from torch import nn

import rnnwidgets as rw
from rnnwidgets.capture import trace

STATES = {"LSTM": ["h", "c"], "GRU": ["h"], "RNN_TANH": ["h"], "RNN_RELU": ["h"]}


def reference_edit(edits):
    """The reference's intervention, written from the edits' documented meaning: for every edit of
    that layer, quantity, step and element, its units take the clamp's value or the source's."""
    def edit(layer, b, t, key, value):
        for e in edits:
            if e.layer != layer or e.quantity != key:
                continue
            if (e.steps is not None and t not in e.steps) or (e.batch is not None and b not in e.batch):
                continue
            value = value.clone()
            for k, u in enumerate(e.units):
                if e.value is not None:
                    value[u] = e.value[k if len(e.value) > 1 else 0]
                else:
                    # a module's first call alone, "<name>@0", is the source's "<name>"
                    source = e.source.layers[layer.removesuffix("@0")].quantities()[key]
                    value[u] = float(source[b if source.shape[0] > 1 else 0, t, u])
        return value
    return edit


def check_against_reference(case, edits, atol=1e-9):
    module, inputs, hidden, x, lengths, h0, c0 = make_case(**case)
    before = snapshot(module)
    tr = trace(module, inputs, hidden=hidden, edits=edits)
    assert_untouched(module, before)
    name = type(module).__name__.lower()
    with torch.no_grad():
        ref = Reference(module, x, lengths, name, h0, c0, edit=reference_edit(edits))
    for layer in ref.states:
        lt = tr.layers[layer]
        for key in ref.states[layer]:
            np.testing.assert_allclose(lt.quantities()[key], ref.array(layer, key).numpy(), atol=atol, rtol=1e-6,
                                       err_msg=f"{layer} {key}")
    out = ref.output.numpy()
    np.testing.assert_allclose(tr.outputs[..., :out.shape[2]], out, atol=atol, rtol=1e-6, err_msg="outputs")
    assert tr.meta["edits"] == [e.describe() for e in edits]
    return tr, ref


CASES = [dict(mode=m, layers=2, bidirectional=bi, batch_first=bf, proj=p, packed=pk, lengths=ln,
              dtype=torch.float64, batch=3, steps=6)
         for m in ("LSTM", "GRU", "RNN_TANH") for bi in (False, True) for bf, p, pk, ln in
         [(False, 0, None, None), (True, 0, False, [6, 3, 5])]] + [
    dict(mode="LSTM", layers=2, bidirectional=True, proj=2, dtype=torch.float64, batch=2, steps=5),
    dict(mode="RNN_RELU", layers=1, bidirectional=True, packed=True, lengths=[5, 2], dtype=torch.float64, batch=2,
         steps=5)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items() if k != "dtype"))
def test_fused_edits_match_the_unrolled_reference(case):
    mode = case["mode"]
    name = {"LSTM": "lstm", "GRU": "gru"}.get(mode, "rnn")
    quantities = GATES[mode] + STATES[mode]
    edits = [rw.clamp(f"{name}.l0", q, units=[1], steps=range(1, 3), value=0.3) for q in quantities]
    if case.get("bidirectional"):
        edits.append(rw.clamp(f"{name}.l0.reverse", "h", units=[0, 1], steps=[0, 4], value=[-0.5, 0.5], batch=[1]))
    if case["layers"] > 1:
        edits.append(rw.clamp(f"{name}.l1", "h", units=[0], steps=None, value=0.0))
    check_against_reference(case, edits)


def random_case_and_edits(mode, layers, bidirectional, batch_first, packed, seed, data) -> tuple:
    """A randomized module configuration (make_case's arguments) and 1-3 clamps drawn for it."""
    rng = np.random.default_rng(seed)
    steps, batch = int(rng.integers(2, 7)), int(rng.integers(1, 4))
    lengths = sorted(rng.integers(1, steps + 1, batch).tolist(), reverse=True) if packed else None
    if packed:
        lengths[0] = steps
    proj = int(rng.integers(0, 3)) if mode == "LSTM" else 0
    case = dict(mode=mode, layers=layers, bidirectional=bidirectional, batch_first=batch_first, proj=proj,
                packed=bool(rng.integers(2)) if packed else None, lengths=lengths, batch=batch, steps=steps,
                units=4, given_state=bool(rng.integers(2)), dtype=torch.float64, seed=seed)
    name = {"LSTM": "lstm", "GRU": "gru"}.get(mode, "rnn")
    layer_names = [f"{name}.l{k}" + r for k in range(layers) for r in (("", ".reverse") if bidirectional else ("",))]
    edits = []
    for _ in range(data.draw(st.integers(1, 3))):
        layer = data.draw(st.sampled_from(layer_names))
        quantity = data.draw(st.sampled_from(GATES[mode] + STATES[mode]))
        width = proj if quantity == "h" and proj else 4
        units = data.draw(st.lists(st.integers(0, width - 1), min_size=1, max_size=width, unique=True))
        chosen = data.draw(st.one_of(st.none(), st.lists(st.integers(0, steps - 1), min_size=1, max_size=steps)))
        edits.append(rw.clamp(layer, quantity, units, chosen, data.draw(st.floats(-1, 1))))
    return case, edits


@settings(max_examples=12, deadline=None)
@given(mode=st.sampled_from(["LSTM", "GRU", "RNN_TANH"]), layers=st.integers(1, 2), bidirectional=st.booleans(),
       batch_first=st.booleans(), packed=st.booleans(), seed=st.integers(0, 10**6), data=st.data())
def test_random_configurations_and_edits_match_the_reference(mode, layers, bidirectional, batch_first, packed,
                                                             seed, data):
    check_against_reference(*random_case_and_edits(mode, layers, bidirectional, batch_first, packed, seed, data))


def test_a_patch_takes_the_source_runs_values_and_patching_everything_reproduces_it():
    case = dict(mode="LSTM", layers=2, dtype=torch.float64, batch=2, steps=6)
    module, inputs, hidden, *_ = make_case(**case)
    source = trace(module, inputs + 1.0)
    edits = [rw.patch(source, "lstm.l0", "c", units=[0, 2], steps=range(2, 5)),
             rw.patch(source, "lstm.l1", "forget", units=[3], steps=[1])]
    check_against_reference(case, edits, atol=1e-6)   # the source's values are float32
    # every state of the first layer patched: the second runs as in the source run
    everything = [rw.patch(source, "lstm.l0", q, units=range(4), steps=None) for q in ("h", "c")]
    tr = trace(module, inputs, edits=everything)
    np.testing.assert_allclose(tr.layers["lstm.l1"].h, source.layers["lstm.l1"].h, atol=1e-6)
    np.testing.assert_allclose(tr.outputs, source.outputs, atol=1e-6)


def test_without_edits_and_with_untouched_units_the_run_is_the_plain_one():
    module, inputs, *_ = make_case(mode="GRU", layers=2, batch=2, steps=5)
    plain = trace(module, inputs)
    assert "edits" not in plain.meta
    later = trace(module, inputs, edits=[rw.clamp("gru.l1", "h", [0], steps=[4], value=0.0)])
    np.testing.assert_allclose(later.layers["gru.l0"].h, plain.layers["gru.l0"].h, atol=1e-6)
    np.testing.assert_allclose(later.layers["gru.l1"].h[:, :4], plain.layers["gru.l1"].h[:, :4], atol=1e-6)
    own, _ = own_output(module, inputs, None, False)
    np.testing.assert_allclose(plain.outputs, own.numpy(), atol=1e-6)


def test_bad_edits_are_refused_with_what_was_expected():
    module, inputs, *_ = make_case(mode="GRU", layers=1, batch=2, steps=5)
    with pytest.raises(ValueError, match=r"names no layer of this run; expected one of \['gru.l0'\]"):
        trace(module, inputs, edits=[rw.clamp("gru.l3", "h", [0], 1, 0.0)])
    with pytest.raises(ValueError, match=r"names no step of 'gru.l0', which ran 5 steps; expected steps in \[0, 5\)"):
        trace(module, inputs, edits=[rw.clamp("gru.l0", "h", [0], range(5, 9), 0.0)])
    with pytest.raises(ValueError, match=r"has \['h', 'reset', 'update', 'new'\], got 'forget'"):
        trace(module, inputs, edits=[rw.clamp("gru.l0", "forget", [0], 1, 0.0)])
    with pytest.raises(ValueError, match=r"expected units in \[0, 4\)"):
        trace(module, inputs, edits=[rw.clamp("gru.l0", "h", [4], 1, 0.0)])
    with pytest.raises(ValueError, match=r"expected batch elements in \[0, 2\)"):
        trace(module, inputs, edits=[rw.clamp("gru.l0", "h", [0], 1, 0.0, batch=2)])
    with pytest.raises(TypeError, match="edits: expected a list of rw.clamp"):
        trace(module, inputs, edits=["gru.l0"])


def test_the_edits_are_saved_and_loaded_with_the_trace(tmp_path):
    module, inputs, *_ = make_case(mode="LSTM", layers=1, batch=1, steps=4)
    edits = [rw.clamp("lstm.l0", "c", [1], range(1, 3), 0.0)]
    tr = trace(module, inputs, edits=edits)
    loaded = rw.Trace.load(tr.save(tmp_path / "t.npz"))
    assert loaded.meta["edits"] == [{"op": "clamp", "layer": "lstm.l0", "quantity": "c", "units": [1],
                                     "steps": [1, 2], "batch": None, "value": [0.0]}]
    np.testing.assert_array_equal(loaded.layers["lstm.l0"].states["c"][:, 1:3, 1], 0)


class CellLoop(nn.Module):
    """Cells driven in the model's own loop, as the user writes it."""

    def __init__(self, kind):
        super().__init__()
        self.cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[kind](3, 4).double()
        self.kind = kind

    def forward(self, x):                  # (time, batch, features)
        h = torch.zeros(x.shape[1], 4, dtype=x.dtype)
        state = (h, h.clone()) if self.kind == "lstm" else h
        outs = []
        for x_t in x:
            state = self.cell(x_t, state)
            outs.append(state[0] if self.kind == "lstm" else state)
        return torch.stack(outs)


def module_of_cell(cell: nn.Module, mode: str) -> nn.Module:
    """The reference of a cell (3 inputs, 4 units) run in a loop: a one-layer float64 module of
    ``mode`` ("LSTM", "GRU", "RNN_TANH") with the cell's weights."""
    module = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN}[mode](3, 4).double()
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, k + "_l0").copy_(getattr(cell, k))
    return module


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_cells_in_the_users_loop_follow_the_reference_under_edits(kind):
    torch.manual_seed(1)
    model = CellLoop(kind)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    mode = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN_TANH"}[kind]
    quantities = GATES[mode] + STATES[mode]
    edits = [rw.clamp("cell", q, [k % 4], steps=[1 + k % 4], value=0.25) for k, q in enumerate(quantities)]
    before = snapshot(model)
    tr = trace(model, x, edits=edits)
    assert_untouched(model, before)
    # the reference: the same cell as a one-layer module of the same weights
    module = module_of_cell(model.cell, mode)
    with torch.no_grad():
        edit = reference_edit(edits)
        ref = Reference(module, x.transpose(0, 1), [6, 6], "cell", edit=lambda layer, *at: edit("cell", *at))
    lt = tr.layers["cell"]
    for key in ref.states["cell.l0"]:
        np.testing.assert_allclose(lt.quantities()[key], ref.array("cell.l0", key).numpy(), atol=1e-6,
                                   err_msg=key)
    assert tr.meta["edits"] == [e.describe() for e in edits]


class StepRNN(nn.Module):
    """The char-RNN step module: forward(input, hidden) -> (output, hidden)."""

    def __init__(self):
        super().__init__()
        self.hidden_size = 4
        self.i2h = nn.Linear(3 + 4, 4)
        self.i2o = nn.Linear(3 + 4, 2)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        return self.i2o(combined), torch.tanh(self.i2h(combined))


def test_a_step_module_carries_its_edited_state_to_the_next_step_and_its_output():
    torch.manual_seed(2)
    model = StepRNN()
    x = torch.randn(5, 2, 3)
    edits = [rw.clamp("steprnn", "h", [1, 2], steps=[2], value=[0.5, -0.5])]
    before = snapshot(model)
    tr = trace(model, x, edits=edits)
    assert_untouched(model, before)
    h = torch.zeros(2, 4)
    hs, outs = [], []
    with torch.no_grad():
        for t, x_t in enumerate(x):
            out, h = model(x_t, h)
            if t == 2:
                h = h.clone()
                h[:, 1], h[:, 2] = 0.5, -0.5
            hs.append(h)
            outs.append(out)
    np.testing.assert_allclose(tr.layers["steprnn"].h, torch.stack(hs, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(tr.outputs, torch.stack(outs, 1).numpy(), atol=1e-6)


def test_explore_passes_the_edits_to_the_trace_it_shows():
    module, inputs, *_ = make_case(mode="GRU", layers=1, batch=1, steps=5)
    explorer = rw.explore(module, inputs, edits=[rw.clamp("gru.l0", "h", [0], None, 0.0)])
    assert explorer.trace.meta["edits"][0]["layer"] == "gru.l0"
    np.testing.assert_array_equal(explorer.trace.layers["gru.l0"].h[0, :, 0], 0)


def test_an_nn_gru_inside_a_step_module_called_per_token_counts_steps_across_its_calls():
    from models import OneTokenEncoder

    torch.manual_seed(5)
    model = OneTokenEncoder(20, 6)
    tokens = torch.randint(0, 20, (7, 1))
    edits = [rw.clamp("gru.l0", "h", [1, 4], steps=[2, 5], value=0.5)]
    with torch.no_grad():
        hidden, states = model.initHidden(), []
        for t in range(7):
            _, hidden = model(tokens[t], hidden)
            if t in (2, 5):
                hidden = hidden.clone()
                hidden[..., [1, 4]] = 0.5
            states.append(hidden[0, 0])
    before = snapshot(model)
    tr = trace(model, tokens, edits=edits)
    assert_untouched(model, before)
    np.testing.assert_allclose(tr.layers["gru.l0"].h[0], torch.stack(states).numpy(), atol=1e-6)
    np.testing.assert_allclose(tr.layers["onetokenencoder"].h[0], torch.stack(states).numpy(), atol=1e-6)


# ---- gradients under edits: rw.trace(..., loss=, edits=) ----------------------------------------
def square_loss(output):
    """The whole output sequence and the final h, so both direct paths are exercised."""
    out, state = output
    out = out.data if isinstance(out, nn.utils.rnn.PackedSequence) else out
    h_n = state[0] if isinstance(state, tuple) else state
    return (out ** 2).sum() + (h_n ** 3).sum()


def check_grads_against_reference(case, edits, atol=1e-9):
    """The edited trace's states, outputs, dL/dh_t (dL/dc_t, dL/dm_t) and parameter gradients
    against autograd on the unrolled reference loop with the same edits; the model, its .grad
    fields included, left as found."""
    module, inputs, hidden, x, lengths, h0, c0 = make_case(**case)
    some = next(module.parameters())
    some.grad = torch.randn_like(some)                      # an existing .grad stays as it is
    before = snapshot(module)
    tr = trace(module, inputs, hidden=hidden, loss=square_loss, edits=edits)
    assert_untouched(module, before)
    name = type(module).__name__.lower()
    ref = Reference(module, x, lengths, name, h0, c0, edit=reference_edit(edits))
    value = (ref.output ** 2).sum() + (ref.h_n ** 3).sum()
    for layer in ref.states:
        for key in ref.states[layer]:
            np.testing.assert_allclose(tr.layers[layer].quantities()[key], ref.array(layer, key).detach().numpy(),
                                       atol=atol, rtol=1e-6, err_msg=f"{layer} {key}")
    out = ref.output.detach().numpy()
    np.testing.assert_allclose(tr.outputs[..., :out.shape[2]], out, atol=atol, rtol=1e-6, err_msg="outputs")
    keys = (["h", "c"] + (["m"] if module.proj_size else [])) if module.mode == "LSTM" else ["h"]
    for key in keys:
        for layer, want in ref.grads(value, key).items():
            got = tr.layers[layer].grads[key]
            scale = max(1.0, float(want.abs().max()))
            np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-5 * scale, err_msg=f"{layer} d{key}")
    names = [n for n, _ in module.named_parameters()]
    want = torch.autograd.grad(value, [p for _, p in module.named_parameters()])
    assert list(tr.param_grads) == names
    for n, g in zip(names, want):
        stats = tr.param_grads[n]
        g = g.double()
        np.testing.assert_allclose([stats["norm"], stats["mean_abs"], stats["max_abs"]],
                                   [float(g.norm()), float(g.abs().mean()), float(g.abs().max())],
                                   rtol=1e-6, atol=1e-9, err_msg=n)
    assert tr.meta["edits"] == [e.describe() for e in edits]
    return tr, ref


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items() if k != "dtype"))
def test_gradients_under_edits_match_autograd_on_the_unrolled_reference(case):
    mode = case["mode"]
    name = {"LSTM": "lstm", "GRU": "gru"}.get(mode, "rnn")
    edits = [rw.clamp(f"{name}.l0", q, units=[1], steps=range(1, 3), value=0.3)
             for q in GATES[mode][:2] + STATES[mode]]
    if case.get("bidirectional"):
        edits.append(rw.clamp(f"{name}.l0.reverse", "h", units=[0, 1], steps=[0, 4], value=[-0.5, 0.5], batch=[1]))
    if case["layers"] > 1:
        edits.append(rw.clamp(f"{name}.l1", "h", units=[0], steps=None, value=0.0))
    tr, _ = check_grads_against_reference(case, edits)
    # a unit clamped at every step passes nothing back: the gradient reaching its first layer's
    # steps is what flows through the other units only; its own gradient is what reaches the value
    if case["layers"] > 1:
        assert np.abs(tr.layers[f"{name}.l1"].grads["h"]).max() > 0


@settings(max_examples=12, deadline=None)
@given(mode=st.sampled_from(["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]), layers=st.integers(1, 2),
       bidirectional=st.booleans(), batch_first=st.booleans(), packed=st.booleans(), seed=st.integers(0, 10**6),
       data=st.data())
def test_random_configurations_give_the_reference_gradients_under_edits(mode, layers, bidirectional, batch_first,
                                                                       packed, seed, data):
    check_grads_against_reference(*random_case_and_edits(mode, layers, bidirectional, batch_first, packed, seed,
                                                         data))


def test_a_patch_under_a_loss_takes_the_source_values_as_constants():
    case = dict(mode="GRU", layers=2, dtype=torch.float64, batch=2, steps=6)
    module, inputs, *_ = make_case(**case)
    source = trace(module, inputs + 1.0)
    edits = [rw.patch(source, "gru.l0", "h", units=[0, 2], steps=range(2, 5))]
    check_grads_against_reference(case, edits, atol=1e-6)   # the source's values are float32


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_cells_in_the_users_loop_give_the_reference_gradients_under_edits(kind):
    torch.manual_seed(3)
    model = CellLoop(kind)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    mode = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN_TANH"}[kind]
    edits = [rw.clamp("cell", q, [k % 4, (k + 1) % 4], steps=[1 + k % 4, 3], value=0.25)
             for k, q in enumerate(GATES[mode][:1] + STATES[mode])]

    def loss(out):
        return (out ** 2).sum() + (out[-1] ** 3).sum()

    model.cell.weight_hh.grad = torch.ones_like(model.cell.weight_hh)
    before = snapshot(model)
    tr = trace(model, x, loss=loss, edits=edits)
    assert_untouched(model, before)
    module = module_of_cell(model.cell, mode)
    edit = reference_edit(edits)
    ref = Reference(module, x.transpose(0, 1), [6, 6], "cell", edit=lambda layer, *at: edit("cell", *at))
    value = loss(ref.output.transpose(0, 1))
    lt = tr.layers["cell"]
    for key in STATES[mode]:
        np.testing.assert_allclose(lt.states[key], ref.array("cell.l0", key).detach().numpy(), atol=1e-9, err_msg=key)
        want = ref.grads(value, key)["cell.l0"]
        np.testing.assert_allclose(lt.grads[key], want.numpy(), atol=1e-5 * max(1.0, float(want.abs().max())),
                                   rtol=0, err_msg=f"d{key}")
    wanted = {f"cell.{k}": getattr(module, k + "_l0") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    for (n, p), g in zip(wanted.items(), torch.autograd.grad(value, list(wanted.values()))):
        assert tr.param_grads[n]["norm"] == pytest.approx(float(g.norm()), rel=1e-6), n
    assert tr.meta["edits"] == [e.describe() for e in edits]


def test_a_step_module_gives_the_reference_gradients_under_edits():
    torch.manual_seed(4)
    model = StepRNN().double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    edits = [rw.clamp("steprnn", "h", [1, 2], steps=[2], value=[0.5, -0.5]),
             rw.clamp("steprnn", "h", [0], steps=[1, 3], value=0.1, batch=[1])]

    def loss(outputs):   # (time, batch, features)
        return (outputs ** 2).sum() + outputs[-1, :, 0].sum()

    before = snapshot(model)
    tr = trace(model, x, loss=loss, edits=edits)
    assert_untouched(model, before)
    h = torch.zeros(2, 4, dtype=torch.float64)
    hs, outs = [], []
    for t, x_t in enumerate(x):
        out, h = model(x_t, h)
        if t == 2:
            h = h.clone()
            h[:, 1], h[:, 2] = 0.5, -0.5
        if t in (1, 3):
            h = h.clone()
            h[1, 0] = 0.1
        hs.append(h)
        outs.append(out)
    value = loss(torch.stack(outs))
    params = list(model.named_parameters())
    found = [g if g is not None else torch.zeros_like(t)   # the last state reaches no output
             for g, t in zip(torch.autograd.grad(value, hs + [p for _, p in params], allow_unused=True),
                             hs + [p for _, p in params])]
    np.testing.assert_allclose(tr.layers["steprnn"].h, torch.stack(hs, 1).detach().numpy(), atol=1e-9)
    np.testing.assert_allclose(tr.layers["steprnn"].grads["h"], torch.stack(found[:5], 1).numpy(), atol=1e-6)
    assert np.all(tr.layers["steprnn"].grads["h"][:, 2, 1:3] != 0)   # a clamped state still has its own gradient
    for (n, _), g in zip(params, found[5:]):
        assert tr.param_grads[n]["norm"] == pytest.approx(float(g.norm()), rel=1e-6), n


# ---- a module called several times: "<name>@<call>" ---------------------------------------------
class SharedGRU(nn.Module):
    """An encoder–decoder sharing one nn.GRU: the decoder call starts from the encoder's final
    state. ``packed``: the decoder's batch is a PackedSequence of ``lengths`` (its call then keeps
    a time axis of its own in the Trace, "gru.l0@1")."""

    def __init__(self, lengths=None):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True).double()
        self.lengths = lengths

    def forward(self, source, target):
        _, h = self.gru(source)
        if self.lengths is None:
            return self.gru(target, h)[0]
        packed = nn.utils.rnn.pack_padded_sequence(target, torch.tensor(self.lengths), batch_first=True,
                                                   enforce_sorted=False)
        return nn.utils.rnn.pad_packed_sequence(self.gru(packed, h)[0], batch_first=True)[0]


def shared_reference(model, source, target, lengths, edits):
    """The two calls unrolled, edits named "gru.l0@1" acting on the second one alone."""
    edit = reference_edit(edits)
    enc = Reference(model.gru, source, [source.shape[1]] * len(source), "gru", edit=edit)
    dec = Reference(model.gru, target, lengths, "gru", enc.h_n,
                    edit=lambda layer, *at: edit(layer + "@1", *at))
    return enc, dec


@pytest.mark.parametrize("lengths", [None, [4, 2]])
def test_a_later_call_of_a_module_is_edited_alone_by_its_at_name(lengths):
    torch.manual_seed(6)
    model = SharedGRU(lengths)
    source, target = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 4, 3, dtype=torch.float64)
    edits = [rw.clamp("gru.l0@1", "h", [1], steps=[0, 2], value=0.5), rw.clamp("gru.l0@1", "reset", [0, 3], None, 0.9)]
    plain = trace(model, (source, target))
    tr = trace(model, (source, target), edits=edits)
    enc, dec = shared_reference(model, source, target, lengths or [4, 4], edits)
    if lengths is None:   # the calls joined along time: the second call's steps follow the first's
        assert list(tr.layers) == ["gru.l0"]
        for key in ("h", "reset"):
            want = torch.cat([enc.array("gru.l0", key), dec.array("gru.l0", key)], 1).detach().numpy()
            np.testing.assert_allclose(tr.layers["gru.l0"].quantities()[key], want, atol=1e-9, err_msg=key)
        same = trace(model, (source, target), edits=[rw.clamp("gru.l0", "h", [1], steps=[5, 7], value=0.5),
                                                     rw.clamp("gru.l0", "reset", [0, 3], range(5, 9), 0.9)])
        np.testing.assert_array_equal(same.layers["gru.l0"].h, tr.layers["gru.l0"].h)
    else:                 # kept apart: the first call is as without edits
        assert list(tr.layers) == ["gru.l0", "gru.l0@1"]
        np.testing.assert_array_equal(tr.layers["gru.l0"].h, plain.layers["gru.l0"].h)
        for key in ("h", "reset"):
            np.testing.assert_allclose(tr.layers["gru.l0@1"].quantities()[key],
                                       dec.array("gru.l0", key).detach().numpy(), atol=1e-9, err_msg=key)
        assert np.all(tr.layers["gru.l0@1"].h[0, [0, 2], 1] == np.float32(0.5))
        np.testing.assert_allclose(tr.outputs, dec.output.detach().numpy(), atol=1e-9)
        assert not np.allclose(tr.outputs, plain.outputs)


def test_a_later_call_under_a_loss_and_a_patch_by_its_at_name():
    torch.manual_seed(7)
    lengths = [4, 2]
    model = SharedGRU(lengths)
    source, target = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 4, 3, dtype=torch.float64)
    donor = trace(model, (source + 1, target - 1))
    edits = [rw.patch(donor, "gru.l0@1", "h", [0, 2], steps=[1]), rw.clamp("gru.l0@1", "update", [3], [0, 1], 0.2)]
    tr = trace(model, (source, target), edits=edits, loss=lambda out: (out ** 2).sum())
    enc, dec = shared_reference(model, source, target, lengths, edits)
    value = (dec.output ** 2).sum()
    np.testing.assert_allclose(tr.layers["gru.l0@1"].h, dec.array("gru.l0", "h").detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(tr.layers["gru.l0@1"].h[:, 1, [0, 2]], donor.layers["gru.l0@1"].h[:, 1, [0, 2]],
                               atol=0)
    grads = torch.autograd.grad(value, [*enc.states["gru.l0"]["h"].values(), *dec.states["gru.l0"]["h"].values()],
                                retain_graph=True)
    cells = list(enc.states["gru.l0"]["h"]) + list(dec.states["gru.l0"]["h"])
    for k, ((b, t), g) in enumerate(zip(cells, grads)):
        layer = "gru.l0" if k < len(enc.states["gru.l0"]["h"]) else "gru.l0@1"
        np.testing.assert_allclose(tr.layers[layer].grads["h"][b, t], g.numpy(), atol=1e-6, err_msg=f"{layer} {b} {t}")
    weight = torch.autograd.grad(value, model.gru.weight_hh_l0)[0]
    assert tr.param_grads["gru.weight_hh_l0"]["norm"] == pytest.approx(float(weight.norm()), rel=1e-6)


def test_an_at_name_that_no_call_has_is_refused_with_the_names_there_are():
    model = SharedGRU([4, 2])
    source, target = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"names no layer of this run; expected one of \['gru.l0', 'gru.l0@1', "
                                         r"'gru.l0@0'\]"):
        trace(model, (source, target), edits=[rw.clamp("gru.l0@2", "h", [0], None, 0.0)])
    with pytest.raises(ValueError, match=r"names no step of 'gru.l0@1', which ran 4 steps"):
        trace(model, (source, target), edits=[rw.clamp("gru.l0@1", "h", [0], [4, 5], 0.0)])


def test_the_first_call_alone_is_edited_by_its_at_0_name():
    torch.manual_seed(8)
    model = SharedGRU([4, 2])
    source, target = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 4, 3, dtype=torch.float64)
    donor = trace(model, (source - 1, target))
    edits = [rw.clamp("gru.l0@0", "h", [2], None, -0.5), rw.patch(donor, "gru.l0@0", "h", [1], [3])]
    tr = trace(model, (source, target), edits=edits)
    plain = trace(model, (source, target))
    edit = reference_edit(edits)
    enc = Reference(model.gru, source, [5, 5], "gru", edit=lambda layer, *at: edit(layer + "@0", *at))
    dec = Reference(model.gru, target, [4, 2], "gru", enc.h_n)
    np.testing.assert_allclose(tr.layers["gru.l0"].h, enc.array("gru.l0", "h").detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(tr.layers["gru.l0@1"].h, dec.array("gru.l0", "h").detach().numpy(), atol=1e-6)
    assert np.all(tr.layers["gru.l0"].h[:, :, 2] == np.float32(-0.5))
    assert np.all(tr.layers["gru.l0@1"].h[:, :, 2] != np.float32(-0.5))   # the second call runs its own course
    assert not np.allclose(tr.layers["gru.l0@1"].h, plain.layers["gru.l0@1"].h)   # from the edited state


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_the_native_kernel_gets_contiguous_states_between_edited_steps(monkeypatch, mode):
    """The steps after an edit start from a step of a (time, batch, units) view, which is strided at
    batch > 1: cuDNN refuses such a state ("hx is not contiguous"), so it is made contiguous."""
    from rnnwidgets.capture import edited

    seen = []

    def checked(kernel):
        def run(x, hx, *rest):
            states = hx if isinstance(hx, (list, tuple)) else [hx]
            seen.append(all(s.is_contiguous() for s in states))
            return kernel(x, hx, *rest)
        return run

    monkeypatch.setitem(edited.NATIVE, mode, checked(edited.NATIVE[mode]))
    torch.manual_seed(0)
    module = getattr(nn, mode)(3, 5).eval()
    x = torch.randn(12, 4, 3)
    tr = trace(module, x, edits=[rw.clamp(f"{mode.lower()}.l0", "h", [0, 2], range(4, 6), 0.0)])
    assert seen and all(seen)
    assert np.all(tr.layers[f"{mode.lower()}.l0"].h[:, 4:6, [0, 2]] == 0)
