"""rw.trace(..., loss=...): dL/dh_t and dL/dc_t through time against autograd on an unrolled
per-step reference (tests/reference_rnn.py), and per-parameter gradient statistics."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_rnn import Reference
from test_capture_fused import EncoderDecoder, Tagger, check_first_steps, check_initial, make_case
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnnwidgets.capture import gradients, trace
from rnnwidgets.capture.fused import LayerByLayer


@pytest.fixture(autouse=True)
def native_kernel(monkeypatch):
    """Every layer here runs the native kernel and has its gates recomputed (a GRU on the CPU would
    otherwise run as our step loop, which tests/test_capture_fused_loop.py checks, and an LSTM read
    its gates from the kernel's workspace, which tests/test_capture_fused_native.py checks)."""
    import rnnwidgets.capture.fused as fused
    monkeypatch.setitem(fused.LOOP_BATCH_PER_THREAD, "GRU", 10**9)
    monkeypatch.setitem(fused.WORKSPACE_GATES, "LSTM", False)


def square_loss(output):
    """Uses the whole output sequence and the final h, so both direct paths are exercised."""
    out, state = output
    out = out.data if isinstance(out, PackedSequence) else out
    h_n = state[0] if isinstance(state, tuple) else state
    return (out ** 2).sum() + (h_n ** 3).sum()


def reference_loss(ref):
    return (ref.output ** 2).sum() + (ref.h_n ** 3).sum()


def check_grads(case, atol=1e-5):
    module, inputs, hidden, x, lengths, h0, c0 = make_case(**case)
    tr = trace(module, inputs, hidden=hidden, loss=square_loss)
    check_initial(tr, module, h0, c0)      # the differentiable layers keep the state they started from
    check_first_steps(tr, module, x)
    ref = Reference(module, x, lengths, type(module).__name__.lower(), h0, c0)
    value = reference_loss(ref)
    keys = ["h", "c"] + (["m"] if module.proj_size else []) if module.mode == "LSTM" else ["h"]
    for key in keys:
        for layer, want in ref.grads(value, key).items():
            got = tr.layers[layer].grads[key]
            assert got.dtype == np.float32 and got.shape == want.shape
            scale = max(1.0, float(want.abs().max()))
            np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=atol * scale, err_msg=f"{layer} {key}")
    names = [n for n, _ in module.named_parameters()]
    want = torch.autograd.grad(value, [p for _, p in module.named_parameters()])
    assert list(tr.param_grads) == names
    for name, g in zip(names, want):
        g = g.double()
        stats = tr.param_grads[name]
        np.testing.assert_allclose([stats["norm"], stats["mean_abs"], stats["max_abs"]],
                                   [float(g.norm()), float(g.abs().mean()), float(g.abs().max())], rtol=1e-4, atol=1e-6)
    return tr


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
@pytest.mark.parametrize("flags", [dict(), dict(layers=2, bidirectional=True, given_state=True),
                                   dict(packed=False, lengths=[2, 5, 3], batch=3, layers=2, bidirectional=True),
                                   dict(unbatched=True, batch_first=True, bias=False)])
def test_grads_through_time(mode, flags):
    check_grads(dict(mode=mode, **flags))


@pytest.mark.parametrize("flags", [dict(proj=2, units=4), dict(proj=3, units=5, layers=2, bidirectional=True,
                                                                packed=True, lengths=[5, 4, 2], batch=3)])
def test_lstm_projection_grads(flags):
    check_grads(dict(mode="LSTM", **flags))


@settings(max_examples=15, deadline=None)
@given(mode=st.sampled_from(["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]), layers=st.integers(1, 2),
       bidirectional=st.booleans(), given_state=st.booleans(), seed=st.integers(0, 2 ** 16),
       lengths=st.lists(st.integers(1, 5), min_size=1, max_size=3), units=st.integers(1, 4),
       double=st.booleans(), proj=st.integers(0, 3))
def test_property_grads(mode, layers, bidirectional, given_state, seed, lengths, units, double, proj):
    proj = proj if mode == "LSTM" and proj < units else 0   # proj_size: LSTM only, narrower than the cell
    check_grads(dict(mode=mode, layers=layers, bidirectional=bidirectional, given_state=given_state, seed=seed,
                     lengths=lengths, batch=len(lengths), steps=max(lengths), packed=False, units=units,
                     proj=proj, dtype=torch.float64 if double else torch.float32))


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_float64_exact_before_conversion(mode):
    """In float64 the recomputed states and the scanned gradients match the reference to 1e-10
    (checked on the torch tensors, before the Trace's float32)."""
    module, inputs, hidden, x, lengths, h0, c0 = make_case(mode=mode, layers=2, bidirectional=True, given_state=True,
                                                           packed=False, lengths=[4, 6, 2], batch=3, steps=6,
                                                           dtype=torch.float64)
    anchor = torch.zeros((), requires_grad=True)
    with torch.enable_grad(), LayerByLayer(module, gradients.differentiable_layer(anchor)) as recorder:
        output = module(inputs, hidden)
    param_grads = gradients.backward(module, square_loss(output), anchor)
    ref = Reference(module, x, lengths, type(module).__name__.lower(), h0, c0)
    value = reference_loss(ref)
    want = {key: ref.grads(value, key) for key in (["h", "c"] if mode == "LSTM" else ["h"])}
    with torch.no_grad():
        for run in recorder.runs:
            for d, grads in zip(run.recomputed(), run.grads):
                np.testing.assert_allclose(d.natural(d.h).transpose(0, 1).numpy(),
                                           ref.array(d.name, "h").detach().numpy(), rtol=0, atol=1e-10)
                for key, got in grads.items():
                    np.testing.assert_allclose(d.natural(got).transpose(0, 1).numpy(), want[key][d.name].numpy(),
                                               rtol=0, atol=1e-10, err_msg=f"{d.name} {key}")
                for gate, got in d.gates.items():
                    np.testing.assert_allclose(d.natural(got).transpose(0, 1).numpy(),
                                               ref.array(d.name, gate).detach().numpy(), rtol=0, atol=1e-10)
    for (name, p), g in zip(module.named_parameters(), torch.autograd.grad(value, list(module.parameters()))):
        assert abs(param_grads[name]["norm"] - float(g.norm())) < 1e-10, name


def test_last_step_loss_on_a_tagger():
    torch.manual_seed(4)
    model = Tagger()
    ids = torch.randint(0, 11, (2, 6))
    tr = trace(model, ids, loss="last")
    ref = Reference(model.lstm, model.embed(ids), [6, 6])
    value = model.head(ref.output)[:, -1].sum()
    want = ref.grads(value)["lstm.l0"]
    np.testing.assert_allclose(tr.layers["lstm.l0"].grads["h"], want.numpy(), rtol=0, atol=1e-5)
    assert set(tr.param_grads) == {n for n, _ in model.named_parameters()}
    embed_grad = torch.autograd.grad(value, model.embed.weight)[0]   # reached through the LSTM's input
    assert tr.param_grads["embed.weight"]["norm"] == pytest.approx(float(embed_grad.norm()), rel=1e-5)
    # only the last step is differentiated: its h gets the head directly, earlier steps only through time
    head_part = model.head.weight.sum(0).detach().numpy()
    np.testing.assert_allclose(tr.layers["lstm.l0"].grads["h"][:, -1], np.stack([head_part] * 2), rtol=0, atol=1e-6)


def test_last_step_of_a_packed_output_uses_each_length():
    module, inputs, _, x, lengths, _, _ = make_case(mode="GRU", packed=False, lengths=[3, 5], steps=5)
    tr = trace(module, inputs, loss="last")
    grads = tr.layers["gru.l0"].grads["h"]
    np.testing.assert_allclose(grads[0, 2], np.ones(4), atol=1e-6)   # element 0 ends at step 2
    assert np.all(grads[0, 3:] == 0)
    np.testing.assert_allclose(grads[1, 4], np.ones(4), atol=1e-6)


def test_encoder_decoder_grads_reach_the_encoder_through_its_final_state():
    torch.manual_seed(5)
    model = EncoderDecoder()
    source, target = torch.randint(0, 9, (2, 5)), torch.randint(0, 9, (2, 3))
    tr = trace(model, (source, target), loss=lambda out: out.logsumexp(-1).sum())
    emb_s, emb_t = model.embed(source).detach(), model.embed(target).detach()
    enc = Reference(model.encoder, emb_s, [5, 5], "encoder")
    dec = Reference(model.decoder, emb_t, [3, 3], "decoder", enc.h_n, enc.c_n)
    value = model.head(dec.output).logsumexp(-1).sum()
    for ref, name in ((enc, "encoder.l0"), (dec, "decoder.l0")):
        for key in ("h", "c"):
            want = ref.grads(value, key)[name]
            np.testing.assert_allclose(tr.layers[name].grads[key], want.numpy(), rtol=0, atol=1e-5,
                                       err_msg=f"{name} {key}")
    check_initial(tr, model.encoder, name="encoder")
    for key in ("h", "c"):   # the decoder starts where the encoder ended (its c recomputed: rounding apart)
        np.testing.assert_allclose(tr.layers["decoder.l0"].initial[key], tr.layers["encoder.l0"].states[key][:, -1],
                                   rtol=0, atol=1e-6)


def test_loss_must_be_a_scalar_that_depends_on_the_model():
    module, inputs, *_ = make_case()
    with pytest.raises(ValueError, match="scalar"):
        trace(module, inputs, loss=lambda out: out[0])
    frozen, inputs, *_ = make_case()
    frozen.requires_grad_(False)
    tr = trace(frozen, inputs, loss="last")   # a frozen model still shows its gradients through time
    assert tr.param_grads == {} and np.abs(tr.first.grads["h"][:, 0]).max() > 0
    with pytest.raises(ValueError, match="does not depend"):
        trace(frozen, inputs, loss=lambda out: torch.ones(()))
    with pytest.raises(TypeError, match="callable"):
        trace(module, inputs, loss="first")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("tf32", [False, True])
def test_cuda_model_in_eval_mode_matches_the_cpu_trace(mode, tf32, monkeypatch):
    """cuDNN refuses its RNN backward in eval mode; ours needs none. TF32 (cuDNN's default for
    float32 RNNs on recent GPUs) must not make the recomputation check warn."""
    import warnings
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", tf32)
    module, inputs, hidden, *_ = make_case(mode=mode, layers=2, bidirectional=True, packed=False, lengths=[3, 5],
                                           steps=5, given_state=True)
    on_cpu = trace(module, inputs, hidden=hidden, loss=square_loss)
    module.cuda().eval()
    move = (lambda s: tuple(t.cuda() for t in s)) if isinstance(hidden, tuple) else (lambda s: s.cuda())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        on_gpu = trace(module, inputs.to("cuda"), hidden=move(hidden), loss=square_loss)
    atol = 1e-2 if tf32 else 1e-4
    for name, lt in on_cpu.layers.items():
        for group in ("states", "gates", "grads", "initial"):
            for key, value in getattr(lt, group).items():
                np.testing.assert_allclose(getattr(on_gpu.layers[name], group)[key], value, rtol=0, atol=atol,
                                           err_msg=f"{name} {group} {key}")
    assert all(p.grad is None for p in module.parameters())


class Classifier(nn.Module):
    """A GRU whose final state feeds a linear head: one (batch, classes) output, no time dimension."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.gru(x)[1][-1])


@pytest.mark.parametrize("model,inputs,explicit", [
    (Classifier, torch.randn(2, 5, 3), lambda out: out.sum()),                         # no time dimension
    (lambda: nn.GRU(3, 4), torch.randn(5, 3), lambda out: out[0][-1].sum()),          # unbatched (time, features)
    (lambda: nn.GRU(3, 4, batch_first=True), torch.randn(2, 5, 3), lambda out: out[0][:, -1].sum()),
])
def test_last_means_the_last_step_of_the_first_output(model, inputs, explicit):
    torch.manual_seed(7)
    module = model()
    by_name = trace(module, inputs, loss="last")
    by_hand = trace(module, inputs, loss=explicit)
    np.testing.assert_array_equal(by_name.first.grads["h"], by_hand.first.grads["h"])
    assert np.abs(by_name.first.grads["h"]).max() > 0


@pytest.mark.parametrize("flags", [dict(), dict(layers=2, bidirectional=True, lengths=[5, 3], packed=False)])
def test_projected_lstm_gate_paths_match_autograd(flags):
    """With proj_size the output gate reads dL/dm_t (h_t = W_hr m_t, m_t as wide as c): each
    path of gradients_analysis.each_path equals dL/d(gate pre-activation) from autograd on the
    unrolled reference, and rw.gradient_flow draws a projected LSTM."""
    import rnnwidgets as rw
    from rnnwidgets.gradients_analysis import each_path

    module, inputs, _, x, lengths, _, _ = make_case(mode="LSTM", proj=2, units=5, **flags)
    tr = trace(module, inputs, loss=square_loss)
    ref = Reference(module, x, lengths)
    value = reference_loss(ref)
    slope = {"input gate": ("input", lambda s: s * (1 - s)), "forget gate": ("forget", lambda s: s * (1 - s)),
             "candidate": ("cell", lambda s: 1 - s * s), "output gate": ("output", lambda s: s * (1 - s))}
    for name, lt in tr.layers.items():
        assert lt.grads["m"].shape == lt.states["c"].shape and lt.grads["h"].shape[2] == 2
        paths = dict(each_path("lstm", lt.gates, lt.states, lt.grads, lt.initial["c"], lt.reverse, tr.lengths))
        assert list(paths) == ["forget carry", "input gate", "forget gate", "candidate", "output gate"]
        for path, (gate, derivative) in slope.items():
            want = ref.grads(value, gate)[name] * derivative(ref.array(name, gate))
            np.testing.assert_allclose(paths[path], want.detach().numpy(), rtol=0, atol=1e-5, err_msg=f"{name} {path}")
    flow = rw.gradient_flow(module, inputs, loss=square_loss)
    assert set(flow.flows) == set(tr.layers) and "output gate" in flow.flows["lstm.l0"]


@pytest.mark.parametrize("shape", [(1024, 256), (7,), (3, 1, 5)])
def test_parameter_stats_are_the_float64_sums_of_the_gradient(shape):
    """``stats`` sums |g| in float64 without a float64 copy: the same numbers as the copy's."""
    torch.manual_seed(0)
    g = torch.randn(shape) * torch.logspace(-3, 3, shape[-1])
    g[..., 0] = -g[..., 0].abs() - 1    # a negative largest value: max_abs is |g|'s maximum
    want = g.double()
    got = gradients.stats(g)
    assert got["max_abs"] == float(want.abs().max())
    np.testing.assert_allclose([got["norm"], got["mean_abs"]], [float(want.norm()), float(want.abs().mean())],
                               rtol=1e-12, atol=0)
