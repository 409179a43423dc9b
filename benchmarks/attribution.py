"""What rw.attribution costs beside Captum, measured in the same run: integrated gradients of the
prediction at one step, 32 interpolation points, same model, inputs and baseline.

  rw.attribution(method="integrated_gradients", steps=32) / Captum's LayerIntegratedGradients   target <= 1
      (a token model: embedding 64, a 2-layer 256-unit LSTM, a vocabulary of 100; the median of
       --repeats runs of each, taken in turns)

``--threads 1`` (the default) keeps a busy two-core machine from stalling torch's thread pool.
On a CUDA device (``--device cuda``) the model is in eval mode, where Captum fails (cuDNN's RNN
backward needs training mode): then only ours is timed.

    .venv/bin/python benchmarks/attribution.py [--steps 200] [--batch 1] [--repeats 5] [--threads 1]
"""
import statistics

import numpy as np
import torch
from common import parser, seconds, setup
from torch import nn

import rnnwidgets as rw


class TokenLSTM(nn.Module):
    def __init__(self, vocab=100, dim=64, units=256, layers=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, units, num_layers=layers, batch_first=True)
        self.head = nn.Linear(units, vocab)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))
        return self.head(out)


def main():
    p = parser(__doc__, steps=200, repeats=5)
    p.add_argument("--device", default="cpu")
    a = setup(p)
    model = TokenLSTM().to(a.device).eval()
    ids = torch.randint(0, 100, (a.batch, a.steps), device=a.device)
    t, target = a.steps - 1, 7

    def ours():
        return rw.attribution(model, ids, t=t, target=target, steps=32, baseline=0)

    if a.device != "cpu":
        ours()
        print(f"rw.attribution on {a.device} in eval mode: {statistics.median(seconds(ours) for _ in range(a.repeats)):.3f} s")
        return
    from captum.attr import LayerIntegratedGradients

    lig = LayerIntegratedGradients(lambda x: model(x)[:, t], model.emb)

    def captums():
        return lig.attribute(ids, baselines=torch.zeros_like(ids), target=target, n_steps=32)

    np.testing.assert_allclose(ours(), captums().sum(-1).detach().numpy(), rtol=1e-3, atol=1e-5)  # and warms up
    mine, theirs = [], []
    for _ in range(a.repeats):
        mine.append(seconds(ours))
        theirs.append(seconds(captums))
    m, c = statistics.median(mine), statistics.median(theirs)
    print(f"integrated gradients of step {t} over {a.steps} steps, batch {a.batch}, 32 points "
          f"(2-layer 256-unit LSTM): rw.attribution {m:.3f} s, Captum {c:.3f} s")
    print(f"rw.attribution / Captum LayerIntegratedGradients: {m / c:.2f}  (target <= 1)")


if __name__ == "__main__":
    main()
