"""What edits cost, measured in the same run (median of back-to-back pairs after a warmup):

  rw.trace with one clamp / rw.trace without      2-layer 256-unit LSTM, 1,000 steps   target <= 2
  rw.generate of 1,000 tokens / the model's own step-by-step generation loop        target <= 2
  (also rw.generate with a clamp at every step / the same loop)

    .venv/bin/python benchmarks/whatif.py [--steps 1000] [--batch 1] [--repeats 3] [--threads 1]
"""
import statistics

import torch
from common import parser, seconds, setup
from torch import nn

import rnnwidgets as rw

UNITS, LAYERS, VOCAB = 256, 2, 64


class TokenLM(nn.Module):
    """The stock token language model: ids (batch, time) -> logits (batch, time, vocab)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, UNITS)
        self.lstm = nn.LSTM(UNITS, UNITS, LAYERS, batch_first=True)
        self.head = nn.Linear(UNITS, VOCAB)

    def forward(self, ids, hidden=None):
        out, hidden = self.lstm(self.embed(ids), hidden)
        return self.head(out)

    def step(self, ids, hidden):
        """What a user's own generation loop calls: one token with the carried state."""
        out, hidden = self.lstm(self.embed(ids), hidden)
        return self.head(out), hidden


def own_generation(model: TokenLM, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    """The model's own greedy loop: the prompt once, then one token at a time with its state."""
    with torch.no_grad():
        logits, hidden = model.step(prompt, None)
        ids = [prompt]
        for _ in range(steps):
            token = logits[:, -1].argmax(-1, keepdim=True)
            ids.append(token)
            logits, hidden = model.step(token, hidden)
        return torch.cat(ids, 1)


def ratio(ours, baseline, repeats: int) -> tuple:
    """(median of ours/baseline over back-to-back pairs, median baseline seconds), after a warmup."""
    ours(), baseline()
    pairs = [(seconds(baseline), seconds(ours)) for _ in range(repeats)]
    return statistics.median(o / b for b, o in pairs), statistics.median(b for b, _ in pairs)


def main():
    args = setup(parser(__doc__, steps=1000))
    module = nn.LSTM(UNITS, UNITS, LAYERS).eval()
    x = torch.randn(args.steps, args.batch, UNITS)
    clamp = [rw.clamp("lstm.l0", "c", units=[3], steps=range(10, 20), value=0.0)]
    r, base = ratio(lambda: rw.trace(module, x, edits=clamp), lambda: rw.trace(module, x), args.repeats)
    print(f"trace with one clamp / trace without ({args.steps} steps, batch {args.batch}): {r:.2f}  "
          f"(without: {base * 1e3:.0f} ms; target <= 2)")

    model = TokenLM().eval()
    prompt = torch.randint(0, VOCAB, (args.batch, 5))
    n = args.steps
    r, base = ratio(lambda: rw.generate(model, prompt, steps=n), lambda: own_generation(model, prompt, n),
                    args.repeats)
    print(f"rw.generate of {n} tokens / the model's own loop: {r:.2f}  (own loop: {base * 1e3:.0f} ms; target <= 2)")
    every = [rw.clamp("lstm.l0", "c", units=[3], steps=None, value=0.0)]
    r, base = ratio(lambda: rw.generate(model, prompt, steps=n, edits=every), lambda: own_generation(model, prompt, n),
                    args.repeats)
    print(f"rw.generate of {n} tokens with a clamp at every step / the model's own loop: {r:.2f}")


if __name__ == "__main__":
    main()
