"""What the Explorer costs on a real vocabulary, as a ratio measured in one run.

The word language model of PyTorch's examples (embedding, 2-layer 650-unit LSTM, a decoder onto
a 33,278-word vocabulary, WikiText-2's size), its logits returned flattened to (time x batch,
vocabulary), over 1,000 steps:
    ``rw.explore(model, ids, decode=vocabulary)`` / ``rw.trace(model, ids)``   target <= 1.5
The Explorer traces the model and then builds what the browser gets, the top predictions of
every step among them (a partial selection per step: a full sort of 33,278 scores at each of
1,000 steps took 5.5 s). Arms alternate and medians are compared, so a machine busy with other
work slows both alike; ``--threads 1`` (the default) keeps a busy machine from stalling torch.

    .venv/bin/python benchmarks/vocab.py [--steps 1000] [--batch 1] [--repeats 3] [--threads 1]
"""
import statistics

import torch
from common import parser, seconds, setup
from torch import nn

import rnnwidgets as rw

VOCABULARY, UNITS, LAYERS = 33_278, 650, 2


class WordLanguageModel(nn.Module):
    """The RNNModel of pytorch/examples word_language_model (LSTM), as its forward is written."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Embedding(VOCABULARY, UNITS)
        self.rnn = nn.LSTM(UNITS, UNITS, LAYERS)
        self.decoder = nn.Linear(UNITS, VOCABULARY)

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.encoder(input), hidden)
        decoded = self.decoder(output).view(-1, VOCABULARY)
        return torch.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, batch):
        zeros = torch.zeros(LAYERS, batch, UNITS)
        return zeros, zeros.clone()


def main():
    args = setup(parser(__doc__, steps=1000))
    model = WordLanguageModel().eval()
    ids = torch.randint(0, VOCABULARY, (args.steps, args.batch))
    hidden = model.init_hidden(args.batch)
    words = [f"w{i}" for i in range(VOCABULARY)]

    def trace():
        return rw.trace(model, ids, hidden=hidden)

    def explore():
        return rw.explore(model, ids, hidden=hidden, decode=words)

    shown = explore()   # warm-up, and a check that the predictions are there
    assert shown.view.index["predictions"] is not None, "the Explorer shows no predictions"
    del shown
    trace()
    traced, explored = [], []
    for _ in range(args.repeats):
        traced.append(seconds(trace))
        explored.append(seconds(explore))
    t, e = statistics.median(traced), statistics.median(explored)
    print(f"word LM: {LAYERS}-layer {UNITS}-unit LSTM, {VOCABULARY:,}-word vocabulary, {args.steps:,} steps, "
          f"batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"medians of {args.repeats} alternating runs")
    print(f"rw.trace {t:.2f} s, rw.explore {e:.2f} s: explore / trace = {e / t:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
