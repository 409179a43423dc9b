"""Small synthetic datasets shipped with the package: generated from a seed, no downloads.

- ``brackets``: nested-bracket strings with letters as noise, for next-character prediction;
  the true nesting depth of every character comes with them, so a depth-counting unit can be
  checked against the truth.
- ``adding_problem``: the long-range task for comparing a tanh RNN, a GRU and an LSTM on
  vanishing gradients.
"""
from . import brackets
from .long_range import adding_problem

__all__ = ["brackets", "adding_problem"]
