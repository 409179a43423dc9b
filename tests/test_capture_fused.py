"""rw.trace on nn.LSTM / nn.GRU / nn.RNN and models containing them, against the module's own
outputs and a per-step reference written from the PyTorch documentation (tests/reference_rnn.py)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_rnn import Reference, layer_weights, step
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnwidgets.capture import trace

MODES = {"LSTM": lambda **k: nn.LSTM(**k), "GRU": lambda **k: nn.GRU(**k),
         "RNN_TANH": lambda **k: nn.RNN(nonlinearity="tanh", **k),
         "RNN_RELU": lambda **k: nn.RNN(nonlinearity="relu", **k)}
GATES = {"LSTM": ["input", "forget", "cell", "output"], "GRU": ["reset", "update", "new"],
         "RNN_TANH": [], "RNN_RELU": []}
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.fixture(autouse=True)
def native_kernel(monkeypatch):
    """Every layer here runs the native kernel and has its gates recomputed (a GRU on the CPU would
    otherwise run as our step loop, which tests/test_capture_fused_loop.py checks, and an LSTM read
    its gates from the kernel's workspace, which tests/test_capture_fused_native.py checks)."""
    import rnnwidgets.capture.fused as fused
    monkeypatch.setitem(fused.LOOP_BATCH_PER_THREAD, "GRU", 10**9)
    monkeypatch.setitem(fused.WORKSPACE_GATES, "LSTM", False)


def make_case(mode="LSTM", layers=1, bidirectional=False, batch_first=False, bias=True, proj=0,
              batch=2, steps=5, features=3, units=4, lengths=None, packed=None, unbatched=False,
              given_state=False, dtype=torch.float32, seed=0):
    """A module, what to pass to it, and the same input natural (batch, time, features) for the reference."""
    torch.manual_seed(seed)
    extra = {"proj_size": proj} if proj else {}
    module = MODES[mode](input_size=features, hidden_size=units, num_layers=layers, bias=bias,
                         batch_first=batch_first, bidirectional=bidirectional, **extra).to(dtype)
    batch = 1 if unbatched else batch
    x = torch.randn(batch, steps, features, dtype=dtype)
    lengths = list(lengths) if lengths is not None else [steps] * batch
    for b, n in enumerate(lengths):
        x[b, n:] = 0
    if packed is not None:
        inputs = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=packed)
    elif unbatched:
        inputs = x[0]
    else:
        inputs = x if batch_first else x.transpose(0, 1)
    rows = layers * (2 if bidirectional else 1)
    hidden = h0 = c0 = None
    if given_state:
        h0 = torch.randn(rows, batch, proj or units, dtype=dtype)
        c0 = torch.randn(rows, batch, units, dtype=dtype)
        shape = (lambda t: t[:, 0]) if unbatched else (lambda t: t)
        hidden = (shape(h0), shape(c0)) if mode == "LSTM" else shape(h0)
    return module, inputs, hidden, x, lengths, h0, c0


def own_output(module, inputs, hidden, batch_first):
    """The module's own (stock) output as (batch, time, features) and its final state(s)."""
    with torch.no_grad():
        out, state = module(inputs) if hidden is None else module(inputs, hidden)
    if isinstance(out, torch.nn.utils.rnn.PackedSequence):
        out = pad_packed_sequence(out, batch_first=True)[0]
    elif out.dim() == 2:
        out = out.unsqueeze(0)
    elif not batch_first:
        out = out.transpose(0, 1)
    return out, state


def layer_names(module, name=None):
    """(layer, reverse, trace name) per row of the module's h0, in that order."""
    name = name or type(module).__name__.lower()
    directions = 2 if module.bidirectional else 1
    return [(layer, d == 1, f"{name}.l{layer}" + (".reverse" if d else ""))
            for layer in range(module.num_layers) for d in range(directions)]


def check_initial(tr, module, h0=None, c0=None, name=None):
    """Every layer's initial state is its row of the given h0/c0 (user batch order; (rows, batch,
    units)), zeros when none was given, float32 and as wide as its state."""
    width = module.proj_size or module.hidden_size
    for row, (_, _, layer) in enumerate(layer_names(module, name)):
        lt = tr.layers[layer]
        want = {"h": h0[row] if h0 is not None else torch.zeros(tr.batch, width)}
        if module.mode == "LSTM":
            want["c"] = c0[row] if c0 is not None else torch.zeros(tr.batch, module.hidden_size)
        assert list(lt.initial) == list(want), layer
        for key, value in want.items():
            got = lt.initial[key]
            assert got.dtype == np.float32 and got.shape == (tr.batch, lt.states[key].shape[2]) == tuple(value.shape)
            np.testing.assert_array_equal(got, value.detach().float().numpy(), err_msg=f"{layer} initial {key}")


def check_first_steps(tr, module, x, name=None, atol=1e-5):
    """Property: each layer's first processed step, recomputed from its ``initial`` with the
    layer's own weights (reference_rnn.step), is the state the trace recorded at that step: step
    0 forward, step length_b - 1 reverse. An initial state of the wrong direction or batch
    element fails this. ``x`` is the module's input (batch, time, features) in natural order."""
    dtype = next(module.parameters()).dtype
    layer_in = x.to(dtype)
    outputs = []
    with torch.no_grad():
        for layer, reverse, label in layer_names(module, name):
            if outputs and layer != outputs[-1][0]:                 # the next layer reads the last one's h
                layer_in = torch.cat([h for _, h in outputs], 2).to(dtype)
                outputs = []
            lt = tr.layers[label]
            w = layer_weights(module, layer, reverse)
            for b, n in enumerate(tr.lengths):
                t = int(n) - 1 if reverse else 0
                as_torch = lambda a: torch.from_numpy(a[b]).to(dtype)  # noqa: E731
                c0 = as_torch(lt.initial["c"]) if "c" in lt.initial else None
                h, c, _ = step(module.mode, w, layer_in[b, t], as_torch(lt.initial["h"]), c0)
                np.testing.assert_allclose(h.float().numpy(), lt.h[b, t], rtol=1e-5, atol=atol,
                                           err_msg=f"{label} element {b} step {t}: h from its initial state")
                if c is not None:
                    np.testing.assert_allclose(c.float().numpy(), lt.states["c"][b, t], rtol=1e-5, atol=atol,
                                               err_msg=f"{label} element {b} step {t}: c from its initial state")
            outputs.append((layer, torch.from_numpy(lt.h)))


def check_case(case_kwargs, tr=None):
    module, inputs, hidden, x, lengths, h0, c0 = make_case(**case_kwargs)
    mode = case_kwargs.get("mode", "LSTM")
    tol = TOLERANCE[x.dtype]
    tr = tr or trace(module, inputs, hidden=hidden)
    name = type(module).__name__.lower()
    ref = Reference(module, x, lengths, name, h0, c0)
    expected = list(ref.states)
    assert list(tr.layers) == expected
    np.testing.assert_array_equal(tr.lengths, lengths)
    for layer, store in ref.states.items():
        lt = tr.layers[layer]
        assert lt.kind == {"LSTM": "lstm", "GRU": "gru"}.get(mode, "rnn")
        assert sorted(lt.gates) == sorted(GATES[mode])
        assert sorted(lt.states) == (["c", "h"] if mode == "LSTM" else ["h"])
        for key in store:
            got = lt.quantities()[key]
            assert got.dtype == np.float32 and got.shape[:2] == (len(lengths), max(lengths))
            want = ref.array(layer, key).detach().double().numpy()
            np.testing.assert_allclose(got, want, rtol=0, atol=max(tol, 1e-6), err_msg=f"{layer} {key}")
    out, state = own_output(module, inputs, hidden, module.batch_first)
    np.testing.assert_allclose(tr.outputs, out.float().numpy(), rtol=0, atol=1e-6)
    top = [n for n in tr.layers if n.startswith(f"{name}.l{module.num_layers - 1}")]
    np.testing.assert_allclose(np.concatenate([tr.layers[n].h for n in top], axis=2), out.float().numpy(),
                               rtol=0, atol=1e-6)
    # h_n / c_n: the last step each direction took (t = length-1 forward, t = 0 reverse)
    h_n = state[0] if mode == "LSTM" else state
    h_n = h_n.unsqueeze(1) if h_n.dim() == 2 else h_n
    for row, layer in enumerate(expected):
        last = [n - 1 if not layer.endswith("reverse") else 0 for n in lengths]
        got = np.stack([tr.layers[layer].h[b, t] for b, t in enumerate(last)])
        np.testing.assert_allclose(got, h_n[row].float().numpy(), rtol=0, atol=1e-6)
        if mode == "LSTM":
            c_n = state[1].unsqueeze(1) if state[1].dim() == 2 else state[1]
            got = np.stack([tr.layers[layer].states["c"][b, t] for b, t in enumerate(last)])
            np.testing.assert_allclose(got, c_n[row].float().numpy(), rtol=0, atol=1e-5)
    if x.is_floating_point():
        np.testing.assert_array_equal(tr.inputs, x.float().numpy())
    check_initial(tr, module, h0, c0)
    check_first_steps(tr, module, x)
    return tr


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
def test_every_mode_and_stack(mode, layers, bidirectional):
    check_case(dict(mode=mode, layers=layers, bidirectional=bidirectional))


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
@pytest.mark.parametrize("flags", [dict(batch_first=True), dict(bias=False), dict(unbatched=True),
                                   dict(given_state=True), dict(given_state=True, unbatched=True, bidirectional=True),
                                   dict(packed=True, lengths=[6, 4, 1], batch=3, steps=6, bidirectional=True),
                                   dict(packed=False, lengths=[2, 6, 4], batch=3, steps=6, bidirectional=True,
                                        layers=2, given_state=True)])
def test_flags(mode, flags):
    check_case(dict(mode=mode, **flags))


@pytest.mark.parametrize("flags", [dict(proj=2), dict(proj=3, layers=2, bidirectional=True, given_state=True),
                                   dict(proj=2, packed=False, lengths=[3, 5], steps=5, bidirectional=True)])
def test_lstm_projection(flags):
    tr = check_case(dict(mode="LSTM", units=5, **flags))
    lt = tr.first
    assert lt.h.shape[2] == flags["proj"] and lt.states["c"].shape[2] == 5 and lt.meta["proj_size"] == flags["proj"]


@settings(max_examples=25, deadline=None)
@given(mode=st.sampled_from(list(MODES)), layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(), bias=st.booleans(), given_state=st.booleans(), seed=st.integers(0, 2 ** 16),
       lengths=st.lists(st.integers(1, 6), min_size=1, max_size=3), packed=st.sampled_from([None, False]),
       features=st.integers(1, 4), units=st.integers(1, 4))
def test_property_any_configuration(mode, layers, bidirectional, batch_first, bias, given_state, seed, lengths,
                                    packed, features, units):
    lengths = lengths if packed is not None else [max(lengths)] * len(lengths)
    check_case(dict(mode=mode, layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
                    given_state=given_state, seed=seed, lengths=lengths, batch=len(lengths), steps=max(lengths),
                    packed=packed, features=features, units=units))


@pytest.mark.parametrize("mode,proj", [("LSTM", 0), ("LSTM", 2), ("GRU", 0), ("RNN_TANH", 0), ("RNN_RELU", 0)])
def test_initial_states_of_an_unsorted_packed_sequence_are_in_the_users_order(mode, proj):
    """h0 differs per element and the kernel runs the elements sorted by length: each element
    keeps its own h0, each direction its own row, and its first step recomputes from it."""
    case = dict(mode=mode, proj=proj, units=3, packed=False, lengths=[2, 6, 1, 4], batch=4, steps=6, layers=2,
                bidirectional=True, given_state=True, seed=11)
    module, inputs, hidden, x, lengths, h0, c0 = make_case(**case)
    assert inputs.unsorted_indices.tolist() != list(range(4))        # the kernel's order is not the user's
    assert float((h0[:, :1] - h0[:, 1:]).abs().min()) > 0           # every element starts elsewhere
    tr = check_case(case)
    check_initial(tr, module, h0, c0)
    check_first_steps(tr, module, x)


def test_the_first_step_check_fails_for_another_elements_or_directions_initial():
    """The property above is sharp: the initial state of the wrong batch element, or of the other
    direction, does not reproduce the recorded first step."""
    module, inputs, hidden, x, lengths, h0, c0 = make_case(mode="LSTM", packed=False, lengths=[3, 5, 2], batch=3,
                                                           steps=5, bidirectional=True, given_state=True)
    tr = trace(module, inputs, hidden=hidden)
    check_first_steps(tr, module, x)
    forward, reverse = tr.layers["lstm.l0"], tr.layers["lstm.l0.reverse"]
    right = {key: value.copy() for key, value in forward.initial.items()}
    forward.initial = {key: value[[1, 2, 0]] for key, value in right.items()}
    with pytest.raises(AssertionError, match="lstm.l0 element 0 step 0"):
        check_first_steps(tr, module, x)
    forward.initial, reverse.initial = reverse.initial, right
    with pytest.raises(AssertionError, match="from its initial state"):
        check_first_steps(tr, module, x)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_float64_exact(mode):
    check_case(dict(mode=mode, layers=2, bidirectional=True, dtype=torch.float64, given_state=True))


def test_bfloat16_traced_on_its_dtype():
    module, inputs, _, x, lengths, _, _ = make_case(layers=2, dtype=torch.bfloat16)
    tr = trace(module, inputs)
    out, _ = own_output(module, inputs, None, False)
    assert tr.first.h.dtype == np.float32
    np.testing.assert_allclose(tr.layers["lstm.l1"].h, out.float().numpy(), rtol=0, atol=2e-2)
    ref = Reference(module.float(), x.float(), lengths)   # the same (bf16-valued) weights, in float32
    np.testing.assert_allclose(tr.layers["lstm.l0"].gates["forget"], ref.array("lstm.l0", "forget").detach().numpy(),
                               rtol=0, atol=5e-2)
    check_initial(tr, module)


class Tagger(nn.Module):
    """embedding -> LSTM -> linear head, batch first."""

    def __init__(self, vocab=11, dim=4, units=5):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, units, batch_first=True)
        self.head = nn.Linear(units, vocab)

    def forward(self, ids):
        return self.head(self.lstm(self.embed(ids))[0])


def test_model_containing_an_lstm():
    torch.manual_seed(1)
    model = Tagger()
    ids = torch.randint(0, 11, (2, 6))
    tr = trace(model, ids, tokens=[list("abcdef"), list("ghijkl")])
    assert list(tr.layers) == ["lstm.l0"] and tr.meta == {"source": "fused", "model": "Tagger", "training": True,
                                                           "dropout": False}
    lt = tr.layers["lstm.l0"]
    assert lt.meta == {"module": "lstm", "layer": 0, "direction": "forward", "input_size": 4, "hidden_size": 5,
                       "bias": True, "batch_first": True, "proj_size": 0, "call": 0}
    with torch.no_grad():
        emb = model.embed(ids)
        ref = Reference(model.lstm, emb, [6, 6])
        np.testing.assert_allclose(tr.outputs, model(ids).numpy(), rtol=0, atol=1e-6)
    for key in ("h", "c", "input", "forget", "cell", "output"):
        np.testing.assert_allclose(lt.quantities()[key], ref.array("lstm.l0", key).numpy(), rtol=0, atol=1e-5)
    check_initial(tr, model.lstm, name="lstm")
    with torch.no_grad():
        check_first_steps(tr, model.lstm, model.embed(ids), name="lstm")
    assert tr.inputs is None and tr.tokens == [list("abcdef"), list("ghijkl")]
    np.testing.assert_array_equal(tr.lengths, [6, 6])


class TwoStacked(nn.Module):
    """A GRU feeding a bidirectional LSTM, time first; returns the LSTM's output."""

    def __init__(self):
        super().__init__()
        self.first = nn.GRU(3, 4)
        self.second = nn.LSTM(4, 2, bidirectional=True)

    def forward(self, x):
        return self.second(self.first(x)[0])


def test_two_stacked_modules_in_forward_order():
    torch.manual_seed(2)
    model = TwoStacked()
    x = torch.randn(5, 2, 3)
    tr = trace(model, x)
    assert list(tr.layers) == ["first.l0", "second.l0", "second.l0.reverse"]
    with torch.no_grad():
        mid = model.first(x)[0]
        out = model(x)[0]
    np.testing.assert_allclose(tr.layers["first.l0"].h, mid.transpose(0, 1).numpy(), rtol=0, atol=1e-6)
    ref = Reference(model.second, mid.transpose(0, 1), [5, 5], "second")
    for key in ("h", "c", "forget"):
        np.testing.assert_allclose(tr.layers["second.l0.reverse"].quantities()[key],
                                   ref.array("second.l0.reverse", key).detach().numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(tr.outputs, out.transpose(0, 1).numpy(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(tr.inputs, x.transpose(0, 1).numpy())
    check_initial(tr, model.first, name="first")
    check_initial(tr, model.second, name="second")
    check_first_steps(tr, model.second, mid.transpose(0, 1), name="second")


class EncoderDecoder(nn.Module):
    """Encoder LSTM over the source; the decoder LSTM starts from its final state and is run one
    step at a time over the target (teacher forcing), as generation loops do."""

    def __init__(self, vocab=9, dim=3, units=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.encoder = nn.LSTM(dim, units, batch_first=True)
        self.decoder = nn.LSTM(dim, units, batch_first=True)
        self.head = nn.Linear(units, vocab)

    def forward(self, pair):
        source, target = pair
        _, state = self.encoder(self.embed(source))
        outs = []
        for t in range(target.shape[1]):
            out, state = self.decoder(self.embed(target[:, t:t + 1]), state)
            outs.append(out)
        return self.head(torch.cat(outs, 1))


def test_module_called_per_step_is_joined_along_time():
    torch.manual_seed(3)
    model = EncoderDecoder()
    source, target = torch.randint(0, 9, (2, 5)), torch.randint(0, 9, (2, 3))
    tr = trace(model, (source, target))
    assert list(tr.layers) == ["encoder.l0", "decoder.l0"]
    assert tr.layers["encoder.l0"].h.shape == (2, 5, 4) and tr.layers["decoder.l0"].h.shape == (2, 3, 4)
    assert tr.layers["decoder.l0"].meta["calls"] == 3
    with torch.no_grad():
        _, (h, c) = model.encoder(model.embed(source))
        ref = Reference(model.decoder, model.embed(target), [3, 3], "decoder", h, c)
        np.testing.assert_allclose(tr.outputs, model((source, target)).numpy(), rtol=0, atol=1e-6)
    for key in ("h", "c", "input", "output"):
        np.testing.assert_allclose(tr.layers["decoder.l0"].quantities()[key], ref.array("decoder.l0", key).numpy(),
                                   rtol=0, atol=1e-5)
    # the joined decoder starts from the state its first call was given: the encoder's final one
    check_initial(tr, model.encoder, name="encoder")
    check_initial(tr, model.decoder, h, c, name="decoder")
    with torch.no_grad():
        check_first_steps(tr, model.decoder, model.embed(target), name="decoder")



class CalledTwice(nn.Module):
    """One GRU run on two sequences of different batch sizes."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4)

    def forward(self, pair):
        return self.gru(pair[0])[0].sum() + self.gru(pair[1])[0].sum()


def test_calls_that_cannot_be_joined_get_their_own_names():
    torch.manual_seed(6)
    model = CalledTwice()
    a, b = torch.randn(4, 2, 3), torch.randn(3, 1, 3)
    tr = trace(model, (a, b))
    assert list(tr.layers) == ["gru.l0", "gru.l0@1"]
    assert tr.layers["gru.l0@1"].meta["call"] == 1 and tr.layers["gru.l0@1"].h.shape == (1, 3, 4)
    with torch.no_grad():
        np.testing.assert_allclose(tr.layers["gru.l0@1"].h, model.gru(b)[0].transpose(0, 1).numpy(), atol=1e-6)
    assert tr.outputs is None   # a scalar output has no time dimension
    assert tr.layers["gru.l0"].initial["h"].shape == (2, 4) and tr.layers["gru.l0@1"].initial["h"].shape == (1, 4)
    assert not tr.layers["gru.l0@1"].initial["h"].any()


class DecoderFedItsOwnState(nn.Module):
    """A GRU called twice, the second call on a packed batch of unequal lengths (so the calls are
    not joined) starting from the first call's final state."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4)

    def forward(self, pair):
        out, h = self.gru(pair[0], pair[2])
        return self.gru(pair[1], h)


def test_calls_kept_apart_each_start_from_the_state_they_were_given():
    torch.manual_seed(7)
    model = DecoderFedItsOwnState()
    a, h0 = torch.randn(4, 2, 3), torch.randn(1, 2, 4)
    b = pack_padded_sequence(torch.randn(3, 2, 3), torch.tensor([2, 3]), enforce_sorted=False)
    tr = trace(model, (a, b, h0))
    assert list(tr.layers) == ["gru.l0", "gru.l0@1"]
    with torch.no_grad():
        _, h = model.gru(a, h0)
    np.testing.assert_array_equal(tr.layers["gru.l0"].initial["h"], h0[0].numpy())
    np.testing.assert_allclose(tr.layers["gru.l0@1"].initial["h"], h[0].numpy(), rtol=0, atol=1e-6)
    assert tr.layers["gru.l0@1"].meta["call"] == 1


def test_public_name_and_save_load_round_trip(tmp_path):
    import rnnwidgets as rw
    assert rw.trace is trace
    module, inputs, hidden, *_ = make_case(mode="LSTM", layers=2, bidirectional=True, packed=False,
                                          lengths=[2, 5], steps=5)
    tr = rw.trace(module, inputs, tokens=[["a", "b"], list("cdefg")], loss="last")
    back = rw.Trace.load(tr.save(tmp_path / "run.npz"))
    assert list(back.layers) == list(tr.layers) and back.tokens == tr.tokens and back.param_grads == tr.param_grads
    for name, lt in tr.layers.items():
        assert back.layers[name].meta == lt.meta
        for group in ("states", "gates", "grads", "initial"):
            for key, value in getattr(lt, group).items():
                np.testing.assert_array_equal(getattr(back.layers[name], group)[key], value)
    np.testing.assert_array_equal(back.lengths, [2, 5])


def test_clear_errors():
    lstm = nn.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    with pytest.raises(TypeError, match="nn.Module"):
        trace("a model", x)
    with pytest.raises(ValueError, match="with 3 features, got shape \\(5, 2, 7\\)"):
        trace(lstm, torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        trace(lstm, torch.randn(2, 5, 2, 3))
    with pytest.raises(TypeError, match="floating-point"):
        trace(lstm, torch.ones(5, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="empty sequence"):
        trace(lstm, torch.randn(0, 2, 3))
    with pytest.raises(ValueError, match="non-finite"):
        trace(lstm, torch.where(x > 1, float("nan"), x))
    with pytest.raises(ValueError, match="1 non-finite"):
        trace(CalledTwice(), (x, torch.tensor([[[float("inf"), 0.0, 0.0]]])))
    with pytest.raises(ValueError, match=r"tokens\[0\]: expected 5 tokens"):
        trace(lstm, x, tokens=[list("abc"), list("abcde")])
    with pytest.raises(TypeError, match="tokens"):
        trace(lstm, x, tokens="abcde")
    with pytest.raises(TypeError, match=r"hidden=\(h0, c0\)"):
        trace(lstm, x, hidden=torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"initial state of shape \(1, 2, 4\), got \(1, 3, 4\)"):
        trace(lstm, x, hidden=(torch.zeros(1, 3, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="nothing was recorded"):
        trace(nn.Linear(3, 3), torch.randn(2, 3))


def test_non_finite_values_the_model_makes_are_kept_with_a_warning():
    lstm = nn.LSTM(3, 4)
    with torch.no_grad():
        lstm.bias_ih_l0[0] = float("nan")
    with pytest.warns(RuntimeWarning, match="non-finite"):
        tr = trace(lstm, torch.randn(5, 2, 3))
    assert np.isnan(tr.first.gates["input"][..., 0]).all() and np.isnan(tr.first.h[..., 0]).all()
    assert np.isfinite(tr.first.gates["forget"][:, 0]).all()   # NaN reaches other units from step 1 on


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_a_kernel_the_weights_do_not_reproduce_is_warned_about(monkeypatch, mode):
    import rnnwidgets.capture.fused as fused
    real = fused.NATIVE[mode]
    monkeypatch.setitem(fused.NATIVE, mode, lambda *args: tuple(t + 0.1 for t in real(*args)))
    with pytest.warns(RuntimeWarning, match="recomputed h differs"):
        trace(MODES[mode](input_size=3, hidden_size=4), torch.randn(5, 2, 3))
