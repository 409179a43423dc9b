"""rw.attribution: integrated gradients and gradient x input per input step, equal to Captum's on
the same model and baseline across randomized models (LSTM / GRU / RNN, token and feature
inputs, batch-first or time-major), and the model left as found."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from rnnwidgets.capture.attribution import attribution, gauss_legendre
from tests.model_state import assert_untouched, snapshot

captum_attr = pytest.importorskip("captum.attr")

RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class TokenModel(nn.Module):
    """ids -> logits at every step, through an embedding and a fused recurrent module."""

    def __init__(self, kind, vocab, dim, units, layers, bidirectional, batch_first, padding_idx=None):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=padding_idx)
        self.rnn = RNNS[kind](dim, units, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
        self.head = nn.Linear(units * (2 if bidirectional else 1), vocab)

    def forward(self, ids):
        out, _ = self.rnn(self.emb(ids))
        return self.head(out)


class FeatureModel(nn.Module):
    def __init__(self, kind, features, units, layers, classes, batch_first):
        super().__init__()
        self.rnn = RNNS[kind](features, units, num_layers=layers, batch_first=batch_first)
        self.head = nn.Linear(units, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)


def configs(n, seed):
    rng = random.Random(seed)
    for i in range(n):
        yield i, dict(kind=rng.choice(list(RNNS)), layers=rng.choice([1, 2]), batch=rng.randint(1, 3),
                      steps=rng.randint(2, 9), units=rng.choice([3, 5, 8]), batch_first=rng.random() < 0.5,
                      bidirectional=rng.random() < 0.3)


@pytest.mark.parametrize("i,c", list(configs(8, 1)))
def test_token_integrated_gradients_equal_captums_layer_integrated_gradients(i, c):
    torch.manual_seed(i)
    vocab = 7
    model = TokenModel(c["kind"], vocab, 4, c["units"], c["layers"], c["bidirectional"], True).eval()
    ids = torch.randint(0, vocab, (c["batch"], c["steps"]))
    t, target, pad = random.Random(i).randrange(c["steps"]), i % vocab, 0
    before = snapshot(model)
    ours = attribution(model, ids, t=t, target=target, steps=16, baseline=pad)
    assert_untouched(model, before)

    lig = captum_attr.LayerIntegratedGradients(lambda x: model(x)[:, t], model.emb)
    theirs = lig.attribute(ids, baselines=torch.full_like(ids, pad), target=target, n_steps=16).sum(-1)
    assert ours.shape == (c["batch"], c["steps"]) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)
    if not c["bidirectional"]:
        assert np.all(ours[:, t + 1:] == 0), "a later step cannot contribute to a unidirectional model"


@pytest.mark.parametrize("i,c", list(configs(8, 2)))
def test_feature_integrated_gradients_equal_captums(i, c):
    torch.manual_seed(100 + i)
    model = FeatureModel(c["kind"], 3, c["units"], c["layers"], 4, c["batch_first"]).eval()
    shape = (c["batch"], c["steps"], 3) if c["batch_first"] else (c["steps"], c["batch"], 3)
    x = torch.randn(shape)
    baseline = torch.randn(shape) * 0.1
    t = c["steps"] - 1
    ours = attribution(model, x, t=t, target=2, baseline=baseline)

    # Captum puts the batch first: give it batch-first views of a time-major model's inputs
    def forward(xb):
        xm = xb if c["batch_first"] else xb.transpose(0, 1)
        out = model(xm)
        return out[:, t] if c["batch_first"] else out[t]
    flip = (lambda a: a) if c["batch_first"] else (lambda a: a.transpose(0, 1))
    ig = captum_attr.IntegratedGradients(forward)
    theirs = ig.attribute(flip(x), baselines=flip(baseline), target=2, n_steps=32).sum(-1)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_integrated_gradients_add_up_to_the_change_of_the_output():
    """Completeness: the attributions of a sequence sum to f(x) - f(baseline)."""
    torch.manual_seed(3)
    model = TokenModel("lstm", 6, 4, 5, 1, False, True, padding_idx=0).eval()
    ids = torch.randint(1, 6, (2, 6))
    ours = attribution(model, ids, t=4, target=1, steps=64)      # baseline None: the zero embedding...
    pad = attribution(model, ids, t=4, target=1, steps=64, baseline=0)
    np.testing.assert_allclose(ours, pad, rtol=1e-5, atol=1e-6)  # ...which padding_idx 0 embeds to
    with torch.no_grad():
        change = model(ids)[:, 4, 1] - model(torch.zeros_like(ids))[:, 4, 1]
    np.testing.assert_allclose(ours.sum(1), change.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("tokens", [True, False])
def test_gradient_x_input_equals_captums(tokens):
    torch.manual_seed(5)
    if tokens:
        model = TokenModel("gru", 6, 4, 5, 2, False, True).eval()
        x = torch.randint(0, 6, (3, 7))
        theirs = captum_attr.LayerGradientXActivation(lambda i: model(i)[:, 5], model.emb).attribute(x, target=3)
    else:
        model = FeatureModel("rnn", 3, 5, 1, 4, True).eval()
        x = torch.randn(3, 7, 3)
        theirs = captum_attr.InputXGradient(lambda i: model(i)[:, 5]).attribute(x, target=3)
    ours = attribution(model, x, t=5, target=3, method="gradient_x_input")
    np.testing.assert_allclose(ours, theirs.sum(-1).detach().numpy(), rtol=1e-4, atol=1e-6)


def test_target_none_explains_the_predicted_class_and_a_callable_any_scalar():
    torch.manual_seed(6)
    model = TokenModel("lstm", 5, 4, 6, 1, False, True).eval()
    ids = torch.randint(0, 5, (2, 5))
    with torch.no_grad():
        predicted = model(ids)[:, 3].argmax(1)
    by_default = attribution(model, ids, t=3)
    for b in range(2):
        one = attribution(model, ids[b:b + 1], t=3, target=int(predicted[b]))
        np.testing.assert_allclose(by_default[b], one[0], rtol=1e-5, atol=1e-6)
    # a callable on the output at t, and one on the whole output
    at_t = attribution(model, ids, t=3, target=lambda out: out[:, 2])
    whole = attribution(model, ids, target=lambda out: out[:, 3, 2])
    np.testing.assert_allclose(at_t, attribution(model, ids, t=3, target=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(whole, at_t, rtol=1e-5, atol=1e-6)


def test_the_rw_trace_conventions_hidden_kwargs_and_tuple_batches():
    """hidden= and a (ids, lengths)-style tuple batch reach the forward, repeated over the steps' batch."""
    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.rnn = nn.GRU(3, 4, batch_first=True)
            self.head = nn.Linear(4, 5)

        def forward(self, ids, hidden, scale):
            out, _ = self.rnn(self.emb(ids), hidden)
            return self.head(out) * scale.view(-1, 1, 1)

    torch.manual_seed(7)
    model = WithState().eval()
    ids, scale, h0 = torch.randint(0, 5, (2, 6)), torch.tensor([1.0, 2.0]), torch.randn(1, 2, 4)
    ours = attribution(model, (ids, scale), t=4, target=1, hidden=h0, baseline=0)
    # Captum repeats extra arguments along dim 0: h0 goes to it batch-first
    lig = captum_attr.LayerIntegratedGradients(
        lambda i, s, h: model(i, h.transpose(0, 1).contiguous(), s)[:, 4], model.emb)
    theirs = lig.attribute(ids, baselines=torch.zeros_like(ids), target=1, n_steps=32,
                           additional_forward_args=(scale, h0.transpose(0, 1)))
    np.testing.assert_allclose(ours, theirs.sum(-1).detach().numpy(), rtol=1e-4, atol=1e-6)
    from_zeros = attribution(model, (ids, scale), t=4, target=1, hidden=torch.zeros_like(h0), baseline=0)
    assert not np.allclose(ours, from_zeros)


def test_gauss_legendre_integrates_polynomials_exactly():
    alphas, weights = gauss_legendre(4)
    assert abs(sum(w * a ** 5 for a, w in zip(alphas, weights)) - 1 / 6) < 1e-12


def test_bad_input_gets_one_sentence():
    model = FeatureModel("lstm", 3, 4, 1, 2, True).eval()
    x = torch.randn(1, 4, 3)
    with pytest.raises(ValueError, match="method: expected one of"):
        attribution(model, x, method="saliency")
    with pytest.raises(ValueError, match="t: expected a step in 0..3"):
        attribution(model, x, t=9)
    with pytest.raises(ValueError, match="expected inputs with a time axis"):
        attribution(model, x[0, 0])
    with pytest.raises(ValueError, match="baseline: expected a number or a tensor"):
        attribution(model, x, baseline=torch.zeros(2))
    with pytest.raises(ValueError, match="target: expected class indices in 0..1"):
        attribution(model, x, target=5)
    tokens = TokenModel("lstm", 5, 3, 4, 1, False, True)
    with pytest.raises(ValueError, match="the model has no nn.Embedding"):
        attribution(FeatureModel("gru", 3, 4, 1, 2, True), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="layer: expected a module path"):
        attribution(tokens, torch.zeros(1, 3, dtype=torch.long), layer="nope")


def test_training_mode_model_runs_in_eval_and_keeps_its_flags_and_grads():
    torch.manual_seed(8)
    model = TokenModel("lstm", 5, 4, 6, 2, False, True)
    model.rnn.dropout = 0.5
    model.head.weight.grad = torch.ones_like(model.head.weight)
    before = snapshot(model)
    a = attribution(model, torch.randint(0, 5, (2, 5)), t=2, target=1)
    b = attribution(model, torch.randint(0, 5, (2, 5)), t=2, target=1)
    assert_untouched(model, before)
    assert a.shape == b.shape == (2, 5)
    ids = torch.randint(0, 5, (2, 5))
    np.testing.assert_array_equal(attribution(model, ids, t=2, target=1), attribution(model, ids, t=2, target=1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", list(RNNS))
def test_cuda_model_in_eval_mode_matches_the_cpu(kind):
    """cuDNN's RNN backward refuses eval mode; ours runs without it and agrees with the CPU."""
    torch.manual_seed(9)
    model = TokenModel(kind, 6, 4, 8, 2, False, True).eval()
    ids = torch.randint(0, 6, (3, 10))
    on_cpu = attribution(model, ids, t=7, target=2)
    model.cuda()
    before = snapshot(model)
    on_gpu = attribution(model, ids.cuda(), t=7, target=2)
    assert_untouched(model, before)
    assert torch.backends.cudnn.enabled
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-5)


def test_it_is_the_packages_public_rw_attribution():
    import rnnwidgets as rw

    assert rw.attribution is attribution and "attribution" in rw.__all__


def test_a_word_language_models_flattened_logits_time_major_with_init_hidden():
    """The PyTorch word language model: forward(input, hidden) with init_hidden(bsz), ids (time,
    batch), dropout, log-probabilities flattened to (time * batch, vocab) rows."""
    from tests.models import RNNModel

    class Unflattened(nn.Module):          # the same model with its logits as (time, batch, vocab)
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, ids, hidden):
            return self.lm(ids, hidden)[0].view(ids.shape[0], ids.shape[1], -1)

        def init_hidden(self, bsz):
            return self.lm.init_hidden(bsz)

    torch.manual_seed(10)
    for kind in ("LSTM", "GRU"):
        lm = RNNModel(kind, 9, 6, 5, 2, dropout=0.3)
        ids = torch.randint(0, 9, (6, 3))
        before = snapshot(lm)
        flat = attribution(lm, ids, t=4, target=2)
        assert_untouched(lm, before)
        np.testing.assert_allclose(flat, attribution(Unflattened(lm), ids, t=4, target=2), rtol=1e-5, atol=1e-7)
        assert flat.shape == (3, 6) and np.all(flat[:, 5] == 0) and np.all(flat[:, :5] != 0)


def test_cudnn_is_off_while_it_runs_and_as_it_was_after():
    """cuDNN's RNN backward refuses eval mode, so the run goes without it (the CPU reads the same flag)."""
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.GRU(2, 3, batch_first=True), nn.Linear(3, 2)

        def forward(self, x):
            seen.append(torch.backends.cudnn.enabled)
            return self.head(self.rnn(x)[0])

    before = torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    attribution(Probe().eval(), torch.randn(1, 4, 2), t=2, target=0)
    assert seen and not any(seen)
    assert (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == before


def test_points_split_over_several_passes_give_the_same_attribution():
    torch.manual_seed(11)
    model = TokenModel("lstm", 6, 4, 5, 2, True, True).eval()
    ids = torch.randint(0, 6, (2, 6))
    whole = attribution(model, ids, t=3, target=1, steps=10)
    np.testing.assert_allclose(attribution(model, ids, t=3, target=1, steps=10, points_per_pass=3), whole,
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="points_per_pass: expected a positive number or None"):
        attribution(model, ids, points_per_pass=0)


def test_a_score_per_sequence_is_explained_itself():
    """The Udacity sentiment LSTM returns one sigmoid score per review, (batch,): that score is the
    target, its gradient x input summed over each step's embedding."""
    from public_models import SentimentRNN

    torch.manual_seed(0)
    model = SentimentRNN(11, 1, 8, 12, 2).eval()
    x = torch.randint(0, 11, (3, 7))
    got = attribution(model, x, method="gradient_x_input")
    emb = model.embedding(x).detach().requires_grad_()
    handle = model.embedding.register_forward_hook(lambda m, i, o: emb)
    try:
        score, _ = model(x, model.init_hidden(3))
    finally:
        handle.remove()
    grad, = torch.autograd.grad(score.sum(), emb)
    np.testing.assert_allclose(got, (emb * grad).sum(-1).detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"target: expected an output of \(batch, classes\) at the step, got \(3,\)"):
        attribution(model, x, target=1)


class ScalarModel(nn.Module):
    """(batch, time) floats, one feature a step, expanded by the model itself."""

    def __init__(self, kind, units):
        super().__init__()
        self.rnn = RNNS[kind](1, units, batch_first=True)
        self.head = nn.Linear(units, 1)

    def forward(self, x):
        out, _ = self.rnn(x.unsqueeze(-1))
        return self.head(out[:, -1]).squeeze(-1)


class Squeezed(nn.Module):
    """The same model fed (batch, time, 1)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.squeeze(-1))


class CellLoop(nn.Module):
    """An unbatched (time, features) sequence through an nn.GRUCell loop, one (classes,) output."""

    def __init__(self, features, units, classes):
        super().__init__()
        self.cell = nn.GRUCell(features, units)
        self.head = nn.Linear(units, classes)

    def forward(self, x):
        h = torch.zeros(self.cell.hidden_size)
        for x_t in x:
            h = self.cell(x_t, h)
        return self.head(h)


@pytest.mark.parametrize("i,c", list(configs(6, 7)))
def test_one_unbatched_sequence_equals_the_same_sequence_batched(i, c):
    """(time, features) read unbatched by the module, and (time,) token ids, attribute as the same
    sequence with a batch of one does, and come back (1, time)."""
    torch.manual_seed(i)
    model = FeatureModel(c["kind"], 3, c["units"], c["layers"], 4, c["batch_first"]).eval()
    x = torch.randn(c["steps"], 3)
    before = snapshot(model)
    one = attribution(model, x, t=c["steps"] - 1, target=i % 4, steps=8)
    batched = attribution(model, x.unsqueeze(0 if c["batch_first"] else 1), t=c["steps"] - 1, target=i % 4, steps=8)
    assert one.shape == (1, c["steps"])
    np.testing.assert_allclose(one, batched, rtol=1e-4, atol=1e-6)
    assert_untouched(model, before)

    tokens = TokenModel(c["kind"], 7, 4, c["units"], c["layers"], c["bidirectional"], False).eval()
    ids = torch.randint(0, 7, (c["steps"],))
    one = attribution(tokens, ids, target=i % 7, steps=8, baseline=0)
    batched = attribution(tokens, ids[:, None], target=i % 7, steps=8, baseline=0)
    assert one.shape == (1, c["steps"])
    np.testing.assert_allclose(one, batched, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", list(RNNS))
def test_batch_time_scalars_attribute_per_step(kind):
    """(batch, time) floats the model unsqueezes itself are batched, one value a step: equal to the
    same model fed (batch, time, 1), and the attributions of a sequence add up to f(x) - f(0)."""
    torch.manual_seed(3)
    model = ScalarModel(kind, 6).eval()
    x = torch.randn(3, 9)
    ours = attribution(model, x, steps=64)
    assert ours.shape == (3, 9)
    np.testing.assert_allclose(ours, attribution(Squeezed(model), x[..., None], steps=64), rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        gap = (model(x) - model(torch.zeros_like(x))).numpy()
    np.testing.assert_allclose(ours.sum(axis=1), gap, rtol=1e-3, atol=1e-4)


def test_a_cell_loop_over_one_unbatched_sequence():
    torch.manual_seed(5)
    model = CellLoop(3, 5, 4).eval()
    x = torch.randn(6, 3)
    ours = attribution(model, x, target=1, steps=64)
    with torch.no_grad():
        gap = float(model(x)[1] - model(torch.zeros_like(x))[1])
    assert ours.shape == (1, 6)
    assert abs(float(ours.sum()) - gap) < 1e-3 * max(1.0, abs(gap))
