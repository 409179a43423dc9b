"""The recurrent kinds: one home for their gate and state names, how each gate is squashed, the
naming of layers (the ``.reverse`` rule) and the state a step started from.

numpy only. Capture, analyses and views read these names from here, and the front end receives
them as data (``describe``) instead of repeating them.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

KINDS = ("lstm", "gru", "rnn", "cell", "custom")

# Gate names in PyTorch's chunk order of ``weight_ih``/``weight_hh``: LSTM i, f, g, o; GRU r, z, n.
GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new"), "rnn": ()}
LSTM_GATES = GATES["lstm"]
GRU_GATES = GATES["gru"]
# What a layer of kind "cell" (cells in the user's loop) runs, as its meta["cell"] says.
CELL_KINDS = tuple(GATES)
# The states each kind carries from step to step.
STATES = {"lstm": ("h", "c"), "gru": ("h",), "rnn": ("h",)}
# Gates squashed by a sigmoid (values in [0, 1]); the others ("cell", "new") by tanh.
SIGMOID_GATES = frozenset({"input", "forget", "output", "reset", "update"})

REVERSE_SUFFIX = ".reverse"


def module_label(module_path: str, class_name: str) -> str:
    """What a module is called in a Trace: its path in the model, the model itself ("") by its
    class name lowercased."""
    return module_path or class_name.lower()


def layer_name(module_path: str, layer: int, reverse: bool = False) -> str:
    """A layer's name in a Trace: "<module path>.l<k>", with ".reverse" for a backward direction."""
    return f"{module_path}.l{layer}" + (REVERSE_SUFFIX if reverse else "")


def is_reverse(name: str) -> bool:
    """Whether a layer so named runs backward in time: "<module path>.l<k>.reverse", also as a
    later call of its module ("<...>.reverse@2")."""
    return name.partition("@")[0].endswith(REVERSE_SUFFIX)


def last_forward_layer(names) -> str:
    """The last forward-direction layer (or the last layer): what a model hands on, shown first."""
    names = list(names)
    forward = [name for name in names if not is_reverse(name)]
    return (forward or names)[-1]


def gates_of(kind: str) -> tuple:
    """The gate names of a kind, in chunk order; () for kinds without named gates."""
    return GATES.get(kind, ())


def states_of(kind: str) -> tuple:
    """The state names a kind carries from step to step ("h", and "c" for an LSTM)."""
    return STATES.get(kind, ("h",))


def describe(kind: str) -> dict:
    """What the front end needs to know about a kind, as plain data."""
    gates = gates_of(kind)
    return {"kind": kind, "gates": list(gates), "states": list(states_of(kind)),
            "sigmoid": [g for g in gates if g in SIGMOID_GATES]}


def previous(state: np.ndarray, initial=None, reverse: bool = False, lengths=None) -> np.ndarray:
    """The state each step started from, (batch, time, units) like ``state``.

    A forward layer: step t-1's, with ``initial`` (a (batch, units) array, or 0 when None) at
    t = 0. A reverse layer runs from each element's last valid step (``lengths``; all steps when
    None) back to 0: step t+1's, with ``initial`` at its last valid step.
    """
    prev = np.zeros_like(state)  # padded steps of a shorter element read 0, never stale memory
    start = 0.0 if initial is None else np.asarray(initial, dtype=state.dtype)
    if not reverse:
        prev[:, 1:] = state[:, :-1]
        prev[:, 0] = start
        return prev
    batch, steps = state.shape[:2]
    prev[:, :-1] = state[:, 1:]
    last = np.full(batch, steps - 1) if lengths is None else np.asarray(lengths, dtype=np.int64) - 1
    start = np.broadcast_to(start, (batch, state.shape[2]))
    for b in np.flatnonzero((last >= 0) & (last < steps)):
        prev[b, last[b]] = start[b]
    return prev


def first_step(steps: int, length: Optional[int] = None, reverse: bool = False) -> int:
    """The step a layer processes first: 0 forward, the last valid step (length - 1) reversed."""
    return (steps if length is None else length) - 1 if reverse else 0
