"""Models of the shapes of the best-known public PyTorch recurrent examples, written as those
examples write them, for tests of every entry point: the user's model as it is, no wrapper.

- ``RNNModel``: the word language model (pytorch/examples word_language_model): token ids
  (time, batch), ``forward(input, hidden)``, ``init_hidden(bsz)``, logits flattened.
- ``CharRNN``: the char-RNN name generator (PyTorch tutorial): a step module
  ``forward(category, input, hidden)`` with a constant category before the input.
- ``EncoderRNN`` / ``DecoderRNN``: the seq2seq tutorial, batch-first, the decoder run for a
  fixed number of steps with teacher forcing (``forward(encoder_outputs, encoder_hidden,
  target_tensor=None)``).
- ``OneTokenEncoder``: the classic seq2seq encoder called one token at a time with an nn.GRU
  inside, ``forward(input, hidden)`` and ``initHidden()``.
- ``PackedClassifier``: a sentiment classifier over padded batches, ``forward(ids, lengths)``
  packing inside.
- ``MinGRU``: a minGRU layer computed over the whole sequence at once (a parallel scan in log
  space), ``forward(x, prev_hidden=None)``, declaring its state and gate with ``rw.record``.

And two small ones for the capture tests: ``LoopOfCell``, a user's own loop over one cell, and
``StepCell``, a step module ``forward(x, h)`` over one nn.GRUCell; each calls a given function
after every step (to ``rw.record`` from inside, or to look at the recording while it runs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnwidgets as rw

SOS_TOKEN = 0


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


class CharRNN(nn.Module):
    """The name generator: category and letter in, next letter and hidden out."""

    def __init__(self, n_categories, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(n_categories + input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(n_categories + input_size + hidden_size, output_size)
        self.o2o = nn.Linear(hidden_size + output_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, category, input, hidden):
        input_combined = torch.cat((category, input, hidden), 1)
        hidden = self.i2h(input_combined)
        output = self.i2o(input_combined)
        output_combined = torch.cat((hidden, output), 1)
        output = self.o2o(output_combined)
        return self.softmax(output), hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)

    def forward(self, input):
        embedded = self.embedding(input)
        output, hidden = self.gru(embedded)
        return output, hidden


class DecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, max_length):
        super().__init__()
        self.max_length = max_length
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, encoder_outputs, encoder_hidden, target_tensor=None):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long).fill_(SOS_TOKEN)
        decoder_hidden = encoder_hidden
        decoder_outputs = []
        for i in range(self.max_length):
            decoder_output, decoder_hidden = self.forward_step(decoder_input, decoder_hidden)
            decoder_outputs.append(decoder_output)
            if target_tensor is not None:
                decoder_input = target_tensor[:, i].unsqueeze(1)   # teacher forcing
            else:
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()
        decoder_outputs = torch.cat(decoder_outputs, dim=1)
        return F.log_softmax(decoder_outputs, dim=-1), decoder_hidden, None

    def forward_step(self, input, hidden):
        output = F.relu(self.embedding(input))
        output, hidden = self.gru(output, hidden)
        return self.out(output), hidden


class OneTokenEncoder(nn.Module):
    """The classic seq2seq encoder: one token id per call, ``for ei in range(n): out, h = enc(x[ei], h)``."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size)

    def forward(self, input, hidden):
        embedded = self.embedding(input).view(1, 1, -1)
        output, hidden = self.gru(embedded, hidden)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size)


class PackedClassifier(nn.Module):
    """Sentiment over padded batches: (batch, time) ids and their lengths, packed inside."""

    def __init__(self, vocab, embed, hidden, classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, (h, c) = self.lstm(packed)
        self.last_state = (h.detach(), c.detach())     # what the test compares against
        output, _ = pad_packed_sequence(packed_out, batch_first=True)
        return self.fc(h[-1]), output


def log_g(x):
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


def parallel_scan_log(log_coeffs, log_values):
    """h_t = a_t h_{t-1} + b_t for every t at once, in log space (Heinsen's scan)."""
    a_star = log_coeffs.cumsum(dim=1)
    log_h0_plus_b_star = (log_values - a_star).logcumsumexp(dim=1)
    return (a_star + log_h0_plus_b_star).exp()


class MinGRU(nn.Module):
    """minGRU (Feng et al. 2024): z_t = σ(W_z x_t), h̃_t = g(W_h x_t), h_t = (1 - z_t) h_{t-1} + z_t h̃_t,
    every step at once. Two ``rw.record`` lines declare the state and the gate."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.to_hidden_and_gate = nn.Linear(dim, hidden * 2, bias=False)

    def forward(self, x, prev_hidden=None):
        hidden, gate = self.to_hidden_and_gate(x).chunk(2, dim=-1)
        log_coeffs = -F.softplus(gate)                 # log(1 - z)
        log_z = -F.softplus(-gate)                     # log z
        log_tilde_h = log_g(hidden)
        log_values = log_z + log_tilde_h
        if prev_hidden is not None:
            log_values = torch.cat((log_g(prev_hidden), log_values), dim=1)
            log_coeffs = F.pad(log_coeffs, (0, 0, 1, 0))
        out = parallel_scan_log(log_coeffs, log_values)[:, -x.shape[1]:]
        z = gate.sigmoid()
        rw.record("update", z, time=1)                 # the gate z_t, (batch, time, hidden)
        rw.record("h", out, time=1, decay=1 - z)       # the state h_t = (1 - z_t) h_{t-1} + z_t h̃_t
        return out, out[:, -1:]


class LoopOfCell(nn.Module):
    """A user's own loop over one cell (``cell``, else nn.LSTMCell(3, 4)) along the first axis of
    ``xs``, from no state; ``each(hx)`` after every step. Returns the last step's output."""

    def __init__(self, cell: nn.Module | None = None, each=None):
        super().__init__()
        self.cell = nn.LSTMCell(3, 4) if cell is None else cell
        self.each = each

    def forward(self, xs):
        hx = None
        for x in xs:
            hx = self.cell(x, hx)
            if self.each is not None:
                self.each(hx)
        return hx


class StepCell(nn.Module):
    """A step module over nn.GRUCell(3, 4): ``forward(x, h)`` returns the new state as output
    and state; ``each(h)`` after the step."""

    def __init__(self, each=None):
        super().__init__()
        self.cell = nn.GRUCell(3, 4)
        self.hidden_size = 4
        self.each = each

    def forward(self, x, h):
        h = self.cell(x, h)
        if self.each is not None:
            self.each(h)
        return h, h
