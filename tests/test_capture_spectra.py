"""rw.dynamics: the step Jacobian's singular values against autograd on a per-step reference,
finite-time Lyapunov exponents against known values and an independent QR, the PCA plane, and
the model left as found."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnwidgets as rw
from rnnwidgets.capture import spectra
from tests.model_state import assert_untouched, snapshot
from tests.models import CharRNN, DecoderRNN, EncoderRNN, PackedClassifier
from tests.reference_rnn import Reference, layer_weights, step

RTOL = 1e-4


def reference_jacobians(module, x, lengths, h0=None, c0=None, name="rnn"):
    """layer name -> {(b, t): J_t} from autograd on the documented equations, one step at a time."""
    ref = Reference(module, x, lengths, name=name, h0=h0, c0=c0)
    directions = 2 if module.bidirectional else 1
    width = module.proj_size if getattr(module, "proj_size", 0) else module.hidden_size
    lstm = module.mode == "LSTM"
    found = {}
    for layer in range(module.num_layers):
        for d in range(directions):
            lname = f"{name}.l{layer}" + (".reverse" if d else "")
            w = {k: v.detach() for k, v in layer_weights(module, layer, reverse=d == 1).items()}
            store = ref.states[lname]
            below = [ref.states[f"{name}.l{layer - 1}" + s] for s in ([""] + [".reverse"] * (directions == 2))
                     ] if layer else []
            row = layer * directions + d
            found[lname] = {}
            for b in range(x.shape[0]):
                order = list(range(lengths[b]))[:: -1 if d else 1]
                h = h0[row, b] if h0 is not None else x.new_zeros(width)
                c = c0[row, b] if c0 is not None else x.new_zeros(module.hidden_size)
                for t in order:
                    xt = x[b, t] if layer == 0 else torch.cat([s["h"][(b, t)] for s in below]).detach()
                    s_prev = torch.cat([h, c]).detach() if lstm else h.detach()

                    def one(s, xt=xt):
                        hh, cc = (s[:width], s[width:]) if lstm else (s, None)
                        h2, c2, _ = step(module.mode, w, xt, hh, cc)
                        return torch.cat([h2, c2]) if lstm else h2
                    found[lname][(b, t)] = torch.autograd.functional.jacobian(one, s_prev)
                    h = store["h"][(b, t)]
                    c = store["c"][(b, t)] if lstm else c
    return found


CONFIGS = [
    dict(cls=nn.LSTM, layers=2, bidirectional=True),
    dict(cls=nn.LSTM, layers=1, proj_size=3),
    dict(cls=nn.LSTM, layers=2, bidirectional=True, proj_size=2, packed=True),
    dict(cls=nn.GRU, layers=2, bidirectional=True, packed=True),
    dict(cls=nn.GRU, layers=1, bias=False, hidden=True),
    dict(cls=nn.RNN, layers=2, nonlinearity="tanh", hidden=True),
    dict(cls=nn.RNN, layers=1, bidirectional=True, nonlinearity="relu"),
    dict(cls=nn.LSTM, layers=1, hidden=True, batch_first=False),
]


@pytest.mark.parametrize("seed", range(len(CONFIGS)))
def test_singular_values_equal_autograd_on_one_step(seed):
    cfg = dict(CONFIGS[seed])
    torch.manual_seed(seed)
    cls = cfg.pop("cls")
    kwargs = dict(num_layers=cfg.get("layers", 1), bidirectional=cfg.get("bidirectional", False),
                  bias=cfg.get("bias", True), batch_first=cfg.get("batch_first", True))
    if cls is nn.LSTM and cfg.get("proj_size"):
        kwargs["proj_size"] = cfg["proj_size"]
    if cls is nn.RNN:
        kwargs["nonlinearity"] = cfg["nonlinearity"]
    module = cls(3, 5, **kwargs).double()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(2.0)   # larger weights: a spread of singular values, saturating gates
    batch, steps = 3, 6
    lengths = [6, 4, 1] if cfg.get("packed") else [steps] * batch
    x = torch.randn(batch, steps, 3, dtype=torch.float64)
    directions = 2 if kwargs["bidirectional"] else 1
    width = kwargs.get("proj_size") or 5
    h0 = c0 = None
    if cfg.get("hidden"):
        h0 = torch.randn(kwargs["num_layers"] * directions, batch, width, dtype=torch.float64)
        c0 = torch.randn(kwargs["num_layers"] * directions, batch, 5, dtype=torch.float64) if cls is nn.LSTM else None
    if cfg.get("packed"):
        inputs = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    else:
        inputs = x if kwargs["batch_first"] else x.transpose(0, 1).contiguous()
    hidden = None if h0 is None else ((h0, c0) if cls is nn.LSTM else h0)
    before = snapshot(module)
    dyn = rw.dynamics(module, inputs, hidden=hidden, k=4)
    assert_untouched(module, before)
    expected = reference_jacobians(module, x, lengths, h0=h0, c0=c0, name=cls.__name__.lower())
    assert list(dyn.layers) == list(expected)
    for name, jacs in expected.items():
        d = dyn.layers[name]
        assert d.singular_values.dtype == np.float32 and d.singular_values.shape == (batch, steps, 4)
        for (b, t), jac in jacs.items():
            values = torch.linalg.svdvals(jac).numpy()
            np.testing.assert_allclose(d.singular_values[b, t], values[:4], rtol=RTOL, atol=1e-7, err_msg=f"{name} {b} {t}")
            # sigma_min: as accurate as svdvals itself (relative, plus rounding at the scale of sigma_max)
            np.testing.assert_allclose(d.sigma_min[b, t], values[-1], rtol=RTOL, atol=1e-6 * values[0],
                                       err_msg=f"sigma_min {name} {b} {t}")
        for b, n in enumerate(lengths):
            assert np.isnan(d.singular_values[b, n:]).all() and np.isnan(d.sigma_min[b, n:]).all()
        # the Lyapunov sums: the same QR over the reference Jacobians in the order the layer runs
        reverse = name.endswith(".reverse")
        for b, n in enumerate(lengths):
            q = np.linalg.qr(np.random.default_rng(0).standard_normal((jac.shape[0], 4)))[0]
            sums = np.zeros(4)
            for t in (reversed(range(n)) if reverse else range(n)):
                q, r = np.linalg.qr(jacs[(b, t)].numpy() @ q)
                with np.errstate(divide="ignore"):      # a dead ReLU direction: log 0
                    sums += np.log(np.abs(np.diag(r)))
            np.testing.assert_allclose(d.lyapunov[b], np.sort(sums / n)[::-1], rtol=1e-6, atol=1e-9)


def test_float32_lstm_matches_autograd():
    torch.manual_seed(1)
    module = nn.LSTM(4, 16, batch_first=True)
    x = torch.randn(2, 5, 4)
    dyn = rw.dynamics(module, x, k=8)
    jacs = reference_jacobians(module.double(), x.double(), [5, 5], name="lstm")["lstm.l0"]
    for (b, t), jac in jacs.items():
        np.testing.assert_allclose(dyn.layers["lstm.l0"].singular_values[b, t], torch.linalg.svdvals(jac)[:8],
                                   rtol=RTOL)


def test_lyapunov_of_a_scaled_orthogonal_network_is_log_scale():
    torch.manual_seed(0)
    rnn = nn.RNN(2, 12, bias=False, batch_first=True).double()
    scale = 0.9
    with torch.no_grad():
        q = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))[0]
        rnn.weight_hh_l0.copy_(scale * q)
    dyn = rw.dynamics(rnn, torch.zeros(3, 40, 2, dtype=torch.float64), k=5)
    d = dyn.layers["rnn.l0"]
    assert d.lyapunov.dtype == np.float64 and d.lyapunov.shape == (3, 5)
    np.testing.assert_allclose(d.lyapunov, np.log(scale), rtol=1e-10)
    np.testing.assert_allclose(d.singular_values, scale, rtol=1e-6)
    np.testing.assert_allclose(d.sigma_min, scale, rtol=1e-6)


def test_chunks_give_the_same_numbers(monkeypatch):
    torch.manual_seed(2)
    gru = nn.GRU(3, 6, num_layers=2, bidirectional=True)
    x = torch.randn(9, 2, 3)
    whole = rw.dynamics(gru, x, k=3)
    monkeypatch.setattr(spectra, "CHUNK_BYTES", 1)       # one step at a time
    chunked = rw.dynamics(gru, x, k=3)
    for name in whole.layers:
        np.testing.assert_allclose(chunked.layers[name].singular_values, whole.layers[name].singular_values, rtol=1e-6)
        np.testing.assert_allclose(chunked.layers[name].lyapunov, whole.layers[name].lyapunov, rtol=1e-6)


def test_pca_plane_of_h():
    torch.manual_seed(3)
    lstm = nn.LSTM(3, 8, batch_first=True)
    x = torch.randn(4, 30, 3)
    dyn = rw.dynamics(lstm, x)
    d = dyn.layers["lstm.l0"]
    components, explained, trajectory = d.pca
    h = dyn.trace.layers["lstm.l0"].h.reshape(-1, 8).astype(np.float64)
    assert components.shape == (8, 3) and explained.shape == (3,) and trajectory.shape == (4, 30, 3)
    np.testing.assert_allclose(components.T @ components, np.eye(3), atol=1e-10)
    centred = h - h.mean(0)
    np.testing.assert_allclose(explained, np.var(centred @ components, axis=0, ddof=1), rtol=1e-8)
    top = np.linalg.svd(centred, compute_uv=False)[:3] ** 2 / (len(h) - 1)
    np.testing.assert_allclose(explained, top, rtol=1e-6)
    np.testing.assert_allclose(trajectory.reshape(-1, 3), centred @ components, atol=1e-10)
    assert d.states.shape == (4, 30, 16)      # [h, c]


def test_cells_in_a_loop_and_token_models():
    torch.manual_seed(4)

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 3)
            self.cell = nn.LSTMCell(3, 5)

        def forward(self, ids):
            h = c = torch.zeros(ids.shape[0], 5)
            for t in range(ids.shape[1]):
                h, c = self.cell(self.emb(ids[:, t]), (h, c))
            return h

    model = Loop()
    ids = torch.randint(0, 10, (2, 6))
    dyn = rw.dynamics(model, ids, k=3)
    d = dyn.layers["cell"]
    cell = model.cell
    x = model.emb(ids).detach()
    h = c = torch.zeros(2, 5)
    for t in range(6):
        for b in range(2):
            def one(s, b=b, t=t):
                h2, c2 = cell(x[b, t], (s[:5], s[5:]))
                return torch.cat([h2, c2])
            jac = torch.autograd.functional.jacobian(one, torch.cat([h[b], c[b]]).detach())
            np.testing.assert_allclose(d.singular_values[b, t], torch.linalg.svdvals(jac)[:3].detach(), rtol=RTOL)
        with torch.no_grad():
            h, c = cell(x[:, t], (h, c))

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 3)
            self.gru = nn.GRU(3, 4, batch_first=True)

        def forward(self, ids):
            return self.gru(self.emb(ids))[0]

    tagger = Tagger().train()
    before = snapshot(tagger)
    dyn = rw.dynamics(tagger, ids, k=2)
    assert_untouched(tagger, before)
    gru = tagger.gru
    xe = tagger.emb(ids).detach()
    jacs = reference_jacobians(gru, xe, [6, 6], name="gru")["gru.l0"]
    for (b, t), jac in jacs.items():
        np.testing.assert_allclose(dyn.layers["gru.l0"].singular_values[b, t], torch.linalg.svdvals(jac)[:2], rtol=RTOL)


def test_step_module_through_autograd():
    torch.manual_seed(5)

    class CharRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden_size = 6
            self.i2h = nn.Linear(3 + 6, 6)
            self.i2o = nn.Linear(3 + 6, 2)

        def forward(self, input, hidden):
            combined = torch.cat((input, hidden), 1)
            return self.i2o(combined), torch.tanh(self.i2h(combined))

    model = CharRNN()
    x = torch.randn(5, 2, 3)                 # (time, batch, features)
    before = snapshot(model)
    dyn = rw.dynamics(model, x, k=3)
    assert_untouched(model, before)
    d = dyn.layers["charrnn"]
    h = torch.zeros(2, 6)
    for t in range(5):
        for b in range(2):
            jac = torch.autograd.functional.jacobian(lambda s, b=b, t=t: model(x[t, b][None], s[None])[1][0], h[b])
            np.testing.assert_allclose(d.singular_values[b, t], torch.linalg.svdvals(jac)[:3].detach(), rtol=RTOL)
        with torch.no_grad():
            h = model(x[t], h)[1]


def test_bad_input_gets_one_sentence():
    lstm = nn.LSTM(2, 3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        rw.dynamics(lstm, torch.randn(4, 1, 2), k=0)
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        rw.dynamics("model", torch.randn(4, 1, 2))

    with pytest.raises(TypeError, match="kwargs names"):
        rw.dynamics(lstm, torch.randn(4, 1, 2), kwargs={"nothing": 1})


def test_half_precision_models_are_analysed_in_float32():
    torch.manual_seed(6)
    gru = nn.GRU(3, 4).to(torch.bfloat16)
    x = torch.randn(5, 2, 3).to(torch.bfloat16)
    d = rw.dynamics(gru, x, k=2).layers["gru.l0"]
    reference = rw.dynamics(gru.float(), x.float(), k=2).layers["gru.l0"]   # same weights, float32 states
    assert d.singular_values.dtype == np.float32 and np.isfinite(d.singular_values).all()
    np.testing.assert_allclose(d.singular_values, reference.singular_values, rtol=5e-2)


def test_numpy_blas_threads_left_as_found():
    from threadpoolctl import threadpool_info
    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
    rw.dynamics(nn.GRU(3, 4), torch.randn(5, 2, 3), k=2)
    assert [(i["filepath"], i["num_threads"]) for i in threadpool_info()] == before


# ---- rw.trace's input conventions and each layer's own time axis ---------------------------------------
def gru_step_jacobian(gru, x, h):
    """dh'/dh of one step of a one-layer nn.GRU at input x (features,) and state h (units,), by autograd."""
    one = lambda s: gru(x[None, None], s[None, None])[1].reshape(-1)  # noqa: E731
    return torch.autograd.functional.jacobian(one, h.detach())


def assert_spectrum(d, b, t, jac, k):
    values = torch.linalg.svdvals(jac.double()).numpy()
    np.testing.assert_allclose(d.singular_values[b, t], values[:k], rtol=RTOL, atol=1e-6, err_msg=f"{d.name} {b} {t}")
    np.testing.assert_allclose(d.sigma_min[b, t], values[-1], rtol=RTOL, atol=1e-6 * values[0])


class Seq2Seq(nn.Module):
    """The seq2seq tutorial's encoder and decoder in one model: source (batch, 7), the decoder's GRU
    called once per target step with teacher forcing; forward(source, target)."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = EncoderRNN(12, 5), DecoderRNN(5, 11, max_length=9)

    def forward(self, source, target):
        encoder_outputs, encoder_hidden = self.encoder(source)
        return self.decoder(encoder_outputs, encoder_hidden, target)[0]


def test_encoder_decoder_each_layer_on_its_own_steps():
    torch.manual_seed(11)
    model = Seq2Seq().eval()
    source, target = torch.randint(0, 12, (2, 7)), torch.randint(0, 11, (2, 9))
    before = snapshot(model)
    for dyn in (rw.dynamics(model, (source, target), k=3),                      # a tuple batch spread over forward
                rw.dynamics(model, source, kwargs={"target": target}, k=3)):
        assert_untouched(model, before)
        enc, dec = dyn.layers["encoder.gru.l0"], dyn.layers["decoder.gru.l0"]
        assert enc.singular_values.shape == (2, 7, 3) and dec.singular_values.shape == (2, 9, 3)
        assert enc.lengths.tolist() == [7, 7] and dec.lengths.tolist() == [9, 9]
        assert np.isfinite(enc.singular_values).all() and np.isfinite(dec.singular_values).all()
        assert enc.pca.trajectory.shape == (2, 7, 3) and np.isfinite(enc.pca.trajectory).all()
        with torch.no_grad():
            xe = model.encoder.embedding(source)
            h_enc = model.encoder.gru(xe)[0]                                    # (2, 7, 5)
            steps_in = torch.cat([torch.zeros(2, 1, dtype=torch.long), target[:, :-1]], dim=1)
            xd = torch.relu(model.decoder.embedding(steps_in))                  # (2, 9, 5)
        for b in range(2):
            h = torch.zeros(5)
            for t in range(7):
                assert_spectrum(enc, b, t, gru_step_jacobian(model.encoder.gru, xe[b, t], h), 3)
                h = h_enc[b, t]
            for t in range(9):   # the decoder starts from the encoder's final state and runs through its calls
                assert_spectrum(dec, b, t, gru_step_jacobian(model.decoder.gru, xd[b, t], h), 3)
                with torch.no_grad():
                    h = model.decoder.gru(xd[b, t][None, None], h[None, None])[1].reshape(-1)
        # the Lyapunov sums run through every call of the decoder, in order
        assert np.isfinite(dec.lyapunov).all() and dec.lyapunov.shape == (2, 3)


def test_decoder_with_hidden_and_kwargs():
    torch.manual_seed(12)
    encoder, decoder = EncoderRNN(12, 5).eval(), DecoderRNN(5, 11, max_length=6).eval()
    source, target = torch.randint(0, 12, (3, 4)), torch.randint(0, 11, (3, 6))
    with torch.no_grad():
        encoder_outputs, encoder_hidden = encoder(source)
    dyn = rw.dynamics(decoder, encoder_outputs, hidden=encoder_hidden, kwargs={"target_tensor": target}, k=2)
    d = dyn.layers["gru.l0"]
    with torch.no_grad():
        xd = torch.relu(decoder.embedding(torch.cat([torch.zeros(3, 1, dtype=torch.long), target[:, :-1]], 1)))
    for b in range(3):
        h = encoder_hidden[0, b]
        for t in range(6):
            assert_spectrum(d, b, t, gru_step_jacobian(decoder.gru, xd[b, t], h), 2)
            with torch.no_grad():
                h = decoder.gru(xd[b, t][None, None], h[None, None])[1].reshape(-1)


def test_a_module_called_twice_is_one_trajectory_each_call_from_its_own_state():
    torch.manual_seed(13)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(2, 3)

        def forward(self, x):
            return self.rnn(self.rnn(x)[0][..., :2])[0]

    model = Twice()
    x = torch.randn(4, 1, 2)
    d = rw.dynamics(model, x, k=3).layers["rnn.l0"]
    assert d.singular_values.shape == (1, 8, 3)
    with torch.no_grad():
        first = model.rnn(x)[0][:, 0]                                          # (4, 3)
    inputs = torch.cat([x[:, 0], first[:, :2]])                                 # (8, 2)
    h = torch.zeros(3)
    for t in range(8):
        if t == 4:
            h = torch.zeros(3)                                                  # the second call is given no state
        one = lambda s, t=t: model.rnn(inputs[t][None, None], s[None, None])[1].reshape(-1)  # noqa: E731
        assert_spectrum(d, 0, t, torch.autograd.functional.jacobian(one, h), 3)
        with torch.no_grad():
            h = one(h)


def test_tuple_batch_with_lengths_and_step_module_kwargs():
    torch.manual_seed(14)
    model = PackedClassifier(vocab=15, embed=3, hidden=4).eval()
    ids, lengths = torch.randint(1, 15, (3, 6)), torch.tensor([6, 2, 4])
    ids[1, 2:] = 0
    ids[2, 4:] = 0
    d = rw.dynamics(model, (ids, lengths), k=2).layers["lstm.l0"]
    assert d.lengths.tolist() == [6, 2, 4]
    for b, n in enumerate(lengths.tolist()):
        assert np.isfinite(d.singular_values[b, :n]).all() and np.isnan(d.singular_values[b, n:]).all()
    jacs = reference_jacobians(model.lstm, model.embedding(ids).detach(), lengths.tolist(), name="lstm")["lstm.l0"]
    for (b, t), jac in jacs.items():
        np.testing.assert_allclose(d.singular_values[b, t], torch.linalg.svdvals(jac)[:2], rtol=RTOL)

    char = CharRNN(n_categories=3, input_size=4, hidden_size=5, output_size=6)
    category = torch.eye(3)[[0, 2]]                                             # one category per batch element
    line = torch.randn(5, 2, 4)                                                 # (time, batch, letters)
    d = rw.dynamics(char, line, kwargs={"category": category}, k=2).layers["charrnn"]
    h = torch.zeros(2, 5)
    for t in range(5):
        for b in range(2):
            one = lambda s, b=b, t=t: char(category[b][None], line[t, b][None], s[None])[1][0]  # noqa: E731
            assert_spectrum(d, b, t, torch.autograd.functional.jacobian(one, h[b]).detach(), 2)
        with torch.no_grad():
            h = char(category, line[t], h)[1]


def test_calls_joined_or_kept_apart_each_match_autograd_on_their_own_steps():
    torch.manual_seed(15)

    class TwoCalls(nn.Module):
        """A 2-layer bidirectional GRU run on two full-length sequences (joined along time), the second
        from the first's final state."""

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)

        def forward(self, pair):
            _, h = self.gru(pair[0])
            return self.gru(pair[1], h)[0]

    model = TwoCalls().double()
    a, b = torch.randn(2, 3, 3, dtype=torch.float64), torch.randn(2, 4, 3, dtype=torch.float64)
    dyn = rw.dynamics(model, (a, b), k=3)
    assert dyn.layers["gru.l0.reverse"].singular_values.shape == (2, 7, 3)
    with torch.no_grad():
        _, h = model.gru(a)
    for offset, x, h0 in ((0, a, None), (3, b, h)):      # each call from the state it was given
        expected = reference_jacobians(model.gru, x, [x.shape[1]] * 2, h0=h0, name="gru")
        for name, jacs in expected.items():
            for (i, t), jac in jacs.items():
                values = torch.linalg.svdvals(jac).numpy()
                np.testing.assert_allclose(dyn.layers[name].singular_values[i, offset + t], values[:3], rtol=RTOL,
                                           err_msg=f"{name} {i} {offset + t}")

    class FedItsOwnState(nn.Module):
        """The second call on a packed batch of unequal lengths: a layer of its own, "gru.l0@1"."""

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 4)

        def forward(self, pair):
            _, h = self.gru(pair[0])
            return self.gru(pair[1], h)[0]

    model = FedItsOwnState().double()
    a, b = torch.randn(5, 2, 3, dtype=torch.float64), torch.randn(3, 2, 3, dtype=torch.float64)
    packed = pack_padded_sequence(b, torch.tensor([2, 3]), enforce_sorted=False)
    dyn = rw.dynamics(model, (a, packed), k=2)
    assert list(dyn.layers) == ["gru.l0", "gru.l0@1"]
    d = dyn.layers["gru.l0@1"]
    assert d.lengths.tolist() == [2, 3] and np.isnan(d.singular_values[0, 2]).all()
    with torch.no_grad():
        _, h = model.gru(a)
    expected = reference_jacobians(model.gru, b.transpose(0, 1), [2, 3], h0=h, name="gru")["gru.l0"]
    for (i, t), jac in expected.items():
        np.testing.assert_allclose(d.singular_values[i, t], torch.linalg.svdvals(jac)[:2].numpy(), rtol=RTOL)
