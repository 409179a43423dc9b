"""``rw.DynamicsView(dyn, fps)``: one layer's dynamics drawn in the browser (js/src/dynamics.ts).

The state's trajectory in its PCA plane with the current step marked and the fixed points on it
(stable filled, unstable hollow, the first unstable mode as short arrows); σ_max and σ_min of
the step Jacobian per step with the running exponent; the eigenvalues of the fixed point nearest the
current state against the unit circle. A step slider in the view moves all of them without the
kernel. Everything travels as one float32 buffer with a small JSON index; numpy only.
"""
from __future__ import annotations

from typing import Optional

import anywidget
import numpy as np
import traitlets

from .. import timeaxis
from ..dynamics_analysis import Dynamics, FixedPoints
from .bundle import BUNDLE
from .still import Still
from .still_views import dynamics_png


def payload(dyn: Dynamics, layer: str, batch: int, fps: Optional[FixedPoints], window: tuple = (0, None)) -> tuple:
    """(index dict, float32 little-endian bytes) for one layer and batch element.

    ``window``: (start, stop) the steps sent (stop None: to the layer's end), cut from the whole
    run's arrays (``layer_window``): its step t is the layer's step start + t, its running exponent
    and PCA plane the whole run's, and ``first_step`` = start numbers it as the model does."""
    d = dyn.layers[layer]
    start, stop = layer_window(d, window)
    steps, cut = stop - start, slice(start, stop)
    arrays = {
        "trajectory": d.pca.trajectory[batch, cut],                 # (T, 3)
        "sigma_max": d.singular_values[batch, cut, 0],               # (T,)
        "sigma_min": d.sigma_min[batch, cut] if d.sigma_min is not None else np.full(steps, np.nan),
        "exponent": d.running_exponent()[batch, cut],
    }
    n = 0
    if fps is not None and len(fps):
        n = len(fps)
        arrays["points"] = d.pca.project(fps.states)               # (n, 3)
        arrays["stable"] = fps.stable.astype(np.float32)
        arrows = np.zeros((n, 3))
        for i, modes in enumerate(fps.unstable_modes):
            if len(modes):
                v = d.pca.components.T @ modes[0].real[:d.pca.mean.shape[0]]
                arrows[i] = v / (np.linalg.norm(v) or 1.0)
        arrays["arrows"] = arrows
        arrays["eig_re"] = fps.eigenvalues.real                    # (n, S)
        arrays["eig_im"] = fps.eigenvalues.imag
        # the fixed point nearest the state at each step, in the full state space
        states = d.states[batch, cut].astype(np.float64)           # (T, S)
        dist = ((states[:, None, :] - fps.states[None]) ** 2).sum(-1) if states.shape[1] == fps.states.shape[1] \
            else np.zeros((steps, n))
        arrays["nearest"] = np.where(np.isfinite(d.pca.trajectory[batch, cut, 0]), dist.argmin(axis=1), -1)
    index, parts, offset = {}, [], 0
    for name, array in arrays.items():
        flat = np.ascontiguousarray(array, dtype="<f4").ravel()
        index[name] = [offset, int(flat.size)]
        parts.append(flat)
        offset += flat.size
    length = int(np.clip(int(d.lengths[batch]) - start, 0, steps))   # its valid steps inside the window
    meta = {"arrays": index, "steps": int(steps), "length": length, "k": int(d.singular_values.shape[2]),
            "points": n, "state": int(fps.eigenvalues.shape[1]) if fps is not None and n else 0,
            # the principal components that exist: as many as the layer has units, at most 3
            # (pca pads the others with zeros), so the view offers no PC2 of a one-unit layer
            "components": components(d),
            "explained": [float(v) for v in d.pca.explained_variance_ratio[:components(d)]],
            "lyapunov": [float(v) for v in d.lyapunov[batch]], "reverse": d.meta.get("direction") == "reverse",
            "first_step": start, "run_steps": int(d.singular_values.shape[1])}
    empty = nothing_to_show(layer, batch, window, int(d.singular_values.shape[1]), int(d.lengths[batch]))
    if empty:
        meta["empty"] = empty
    return meta, np.concatenate(parts).tobytes() if parts else b""


def nothing_to_show(layer: str, batch: int, window: tuple, steps: int, length: int) -> str:
    """The sentence the panel shows instead of empty plots (the front end writes it as text), or
    "" when the window holds some of the layer's steps for that element: a window of steps
    (``rw.trace(steps=...)``) may start past a layer's end (a shorter encoder, say, or one that
    ``layers=`` left out of the trace), or past an element's valid steps."""
    start, stop = window
    shown = f"steps {start}–{stop - 1}" if stop is not None else f"steps {start} on"
    if start >= steps:
        return (f"{layer} has no steps in the window shown ({shown}): it runs {steps} steps, 0–{steps - 1}, "
                "so there is nothing of it to draw here.")
    if start >= length:
        return (f"Batch element {batch} of {layer} has no valid steps in the window shown ({shown}): "
                f"its sequence ends at step {length - 1}, so there is nothing of it to draw here.")
    return ""


def layer_window(d, window: tuple) -> tuple:
    """(start, stop) of a layer's steps in ``window`` (start, stop or None): cut from its own time
    axis as ``rw.trace(steps=...)`` cuts each layer (stop clipped to the layer's steps)."""
    steps = d.singular_values.shape[1]
    start, stop = window
    stop = steps if stop is None else min(int(stop), steps)
    return min(int(start), stop), stop


def step_window(steps) -> tuple:
    """``DynamicsView(steps=...)``: None (every step), or a window as ``rw.trace(steps=...)`` takes
    it (``timeaxis.step_window``); (start, stop or None)."""
    return (0, None) if steps is None else timeaxis.step_window("DynamicsView", steps)


def components(d) -> int:
    """The principal components a layer's state has: one per unit, at most those computed (3)."""
    return int(min(d.pca.components.shape[1], d.pca.mean.shape[0]))


class DynamicsView(Still, anywidget.AnyWidget):
    """``DynamicsView(dyn, fps=None, layer=None, batch=0)``: one layer's dynamics, scrubbable.

    ``t`` is the step shown (the slider's); ``layer`` and ``batch`` choose what is sent. ``fps``:
    a rw.FixedPoints or a list of them (one per layer), each drawn while its layer is shown.
    ``steps``: a slice or range, the window of steps shown (as ``rw.trace(steps=...)`` keeps
    them): ``t`` counts from its first step, which the view numbers as the model does; the
    running exponent and the PCA plane stay those of the whole run ``dyn`` holds.
    """

    _esm = BUNDLE
    _view = traitlets.Unicode("dynamics").tag(sync=True)
    buffer = traitlets.Bytes(b"").tag(sync=True)
    index = traitlets.Dict().tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    batch = traitlets.Int(0).tag(sync=True)
    t = traitlets.Int(0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, dyn: Dynamics, fps=None, layer: Optional[str] = None,
                 batch: int = 0, t: int = 0, steps=None, **kwargs):
        if not isinstance(dyn, Dynamics):
            raise TypeError(f"DynamicsView: expected a rw.Dynamics (from rw.dynamics), got {type(dyn).__name__}")
        self.window = step_window(steps)                     # (start, stop or None): the steps shown
        found = [] if fps is None else list(fps) if isinstance(fps, (list, tuple)) else [fps]
        if not all(isinstance(f, FixedPoints) for f in found):
            raise TypeError(f"DynamicsView: fps: expected a rw.FixedPoints (from rw.fixed_points), a list of them "
                            f"(one per layer) or None, got {type(fps).__name__}")
        self.fixed_points = {f.layer: f for f in found}      # layer -> its fixed points
        if len(self.fixed_points) < len(found):
            raise ValueError(f"DynamicsView: fps: expected one rw.FixedPoints per layer, got two of "
                             f"{[f.layer for f in found]}")
        for name in self.fixed_points:
            if name not in dyn.layers:
                raise ValueError(f"DynamicsView: the fixed points are of {name!r}, which the dynamics do not have "
                                 f"(layers {list(dyn.layers)})")
        layer = layer or (found[0].layer if found else next(iter(dyn.layers)))
        if layer not in dyn.layers:
            raise ValueError(f"DynamicsView: layer must be one of {list(dyn.layers)}, got {layer!r}")
        rows = dyn.layers[layer].singular_values.shape[0]
        if not 0 <= batch < rows:
            raise ValueError(f"DynamicsView: batch must be in [0, {rows}), got {batch}")
        self.dynamics = dyn
        super().__init__(layer=layer, batch=batch, t=t, **kwargs)
        self._show()
        self.observe(lambda _: self._show(), names=["layer", "batch"])

    def _still_png(self):
        return dynamics_png(self)

    def _show(self):
        index, data = payload(self.dynamics, self.layer, self.batch, self.fixed_points.get(self.layer), self.window)
        with self.hold_sync():
            self.buffer = data
            self.index = index
            self.title = f"{self.layer} · batch element {self.batch}"
            self.t = min(max(self.t, 0), max(index["steps"] - 1, 0))

    def save_html(self, path, title: str = "rnnwidgets dynamics"):
        """One self-contained HTML file of this view that opens and scrubs offline."""
        from .export import save_html
        return save_html(self, path, title)
