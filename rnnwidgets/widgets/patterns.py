"""Widgets for patterns across a dataset trace: the Match panel (LSTMVis) and the co-cluster view
(RNNVis), both linked to an Explorer.

The hypothesis is chosen in the Explorer itself: drag over its heatmap to brush a range of steps
and move the θ slider (traits ``brush``, ``threshold``); ``Explorer.matches()`` then searches a
dataset trace. ``MatchPanel(explorer, dataset)`` lists the matches as token snippets aligned on
the run's first step, each over the selected units' heatmap, with where it is and its score;
clicking one selects it, opens its sequence in the Explorer (its steps brushed) and brings that
Explorer into view. ``CoClusterView`` draws the units x tokens response matrix ordered by
cluster, labelled, with its legend and lines between the groups, beside each cluster's ranked
tokens; clicking a cluster highlights its units in the Explorer and brings it into view. Step
ranges are half-open everywhere, as in the DataFrame: [start, end) ends before step ``end``.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Optional

import ipywidgets as widgets
import numpy as np
import traitlets

from ..dataset import DatasetTrace
from ..patterns import cocluster, matches, select_units, unit_stats
from ..ranges import colour_scale, max_abs
from .bundle import BundledView
from .marimo_display import MarimoDisplay
from .payload import OPEN
from .still import Still
from .still_views import coclusters_png, matches_png

if TYPE_CHECKING:  # for annotations only: the Explorer imports this module
    from .explorer import Explorer


def selected_units(explorer: Explorer) -> np.ndarray:
    """The Explorer's hypothesis: the units of its layer and quantity that are on (> threshold)
    over the brushed steps and off just before and after them, in the element shown."""
    brush = list(explorer.view.brush)
    if len(brush) != 2:
        raise ValueError("no steps selected: drag over the Explorer's heatmap to brush a range of steps "
                         "(or set explorer.view.brush = [start, end])")
    view, state = explorer.view, explorer.state
    name = state.shown_quantity(view.layer, view.quantity)
    layer = state.layer_or_default(view.layer)
    values = explorer.trace.layers[layer].quantities()[name][explorer.batch.value]
    length = int(explorer.trace.layer_lengths(layer)[explorer.batch.value])   # the layer's own valid steps
    return select_units(values[:length], brush[0], brush[1], view.threshold)


def explorer_matches(explorer: Explorer, dataset: Optional[DatasetTrace], **options):
    """``Explorer.matches``: the dataset's matches of the Explorer's hypothesis (a DataFrame whose
    ``attrs["units"]`` holds the selected units); ``options`` go to ``rnnwidgets.patterns.matches``."""
    if not isinstance(dataset, DatasetTrace):
        raise TypeError("matches: expected a DatasetTrace to search (rw.trace_dataset(model, batches)), "
                        f"got {type(dataset).__name__}; pass it or set explorer.dataset")
    units = selected_units(explorer)
    start, end = explorer.view.brush
    frame = matches(dataset, units, explorer.view.threshold, layer=explorer.view.layer,
                    quantity=explorer.view.quantity, length=end - start, **options)
    frame.attrs["units"] = units.tolist()
    return frame


class MatchView(BundledView):
    """The browser list of matches (js/src/patterns.ts renderMatches)."""

    _view = traitlets.Unicode("matches").tag(sync=True)
    rows: traitlets.List[dict] = traitlets.List().tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)   # the row opened in the Explorer
    explorer_uid = traitlets.Unicode("").tag(sync=True)   # that Explorer's view (ExplorerView.uid)
    quantity = traitlets.Unicode("").tag(sync=True)   # what the heatmaps show, in words
    units = traitlets.List(traitlets.Int()).tag(sync=True)
    buffer = traitlets.Bytes(b"").tag(sync=True)  # float32: each row's (snippet steps, units) values
    scale = traitlets.Unicode("diverging").tag(sync=True)
    vmin = traitlets.Float(-1.0).tag(sync=True)
    vmax = traitlets.Float(1.0).tag(sync=True)
    context = traitlets.Int(0).tag(sync=True)


class MatchPanel(MarimoDisplay, Still, widgets.VBox):
    """A "find matches" button over the list of the Explorer's hypothesis' matches in ``dataset``.

    ``frame``: the last search's DataFrame; ``limit``: rows shown; ``context``: tokens shown
    either side of each match.
    """

    def __init__(self, explorer: Explorer, dataset: DatasetTrace, *, limit: int = 20, context: int = 5):
        if not isinstance(dataset, DatasetTrace):
            raise TypeError(f"MatchPanel: expected a DatasetTrace, got {type(dataset).__name__}")
        self.explorer, self.dataset = explorer, dataset
        self.limit, self.context = limit, context
        explorer.dataset = dataset
        self.frame = None
        # the button keeps its width and the status wraps beside or under it: in a narrow cell a
        # Label (one line, cut at the cell's edge) hid why a search found nothing
        self.button = widgets.Button(description="find matches", icon="search",
                                     layout=widgets.Layout(flex="0 0 auto", width="auto"))
        self.status = widgets.HTML(layout=widgets.Layout(flex="1 1 16em", min_width="0"))
        self._say("drag over the heatmap, set θ, then find matches")
        self.view = MatchView(explorer_uid=explorer.view.uid)
        self.button.on_click(lambda _b: self.find())
        self.view.on_msg(self._on_message)
        row = widgets.HBox([self.button, self.status],
                           layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([row, self.view])

    def _say(self, text: str) -> None:
        """The status line: ``text`` as text (an error may quote tokens, which are never markup)."""
        style = "display: block; line-height: 1.4; white-space: normal"
        self.status.value = f'<span style="{style}">{html.escape(text)}</span>'

    def _still_png(self):
        """The still a static renderer shows: the last search's rows (none before one)."""
        return matches_png(self.view)

    def find(self):
        """Search the dataset for the Explorer's current hypothesis; fill the list; the DataFrame."""
        try:
            frame = self.explorer.matches(self.dataset, limit=self.limit, context=self.context)
        except ValueError as error:
            self._say(str(error))
            raise
        self.frame = frame
        units = frame.attrs["units"]
        self._say(f"{len(frame)} best matches of units {units} over θ = {self.explorer.view.threshold:.3g}"
                  if len(frame) else f"no matches of units {units}")
        self._show(frame, units)
        return frame

    def _show(self, frame, units) -> None:
        ds, layer, quantity = self.dataset, self.explorer.view.layer, self.explorer.view.quantity
        values = ds.values(layer, quantity)
        offsets = ds.offsets_of(layer)   # the layer's own time axis, else the dataset's (which the tokens label)
        labelled = layer not in ds.layer_offsets
        rows: list[dict] = []
        chunks, offset = [], 0
        for seq, start, end, score in frame[["sequence", "start", "end", "score"]].itertuples(index=False):
            first = max(0, start - self.context)
            last = min(int(offsets[seq + 1] - offsets[seq]), end + self.context)
            base = int(offsets[seq])
            chunk = np.ascontiguousarray(np.asarray(values[base + first:base + last])[:, units], dtype="<f4")
            rows.append({"sequence": int(seq), "start": int(start), "end": int(end), "score": float(score),
                         "tokens": ds.tokens(int(seq), first, last) if labelled else None,
                         "before": int(start - first),
                         "steps": int(last - first), "offset": offset})
            chunks.append(chunk.ravel())
            offset += chunk.size
        data = np.concatenate(chunks) if chunks else np.zeros(0, "<f4")
        scale = colour_scale(quantity, data.reshape(-1, 1) if data.size else np.zeros((1, 1), "<f4"))
        with self.view.hold_sync():
            self.view.units = [int(u) for u in units]
            self.view.buffer = data.tobytes()
            self.view.scale, self.view.vmin, self.view.vmax = scale["scale"], scale["vmin"], scale["vmax"]
            self.view.context = max((r["before"] for r in rows), default=0)
            self.view.quantity = f"{quantity} of {layer or ds.default_layer}"
            self.view.selected = -1
            self.view.rows = rows

    def open_match(self, row: int) -> None:
        """Show match ``row`` of the last search in the Explorer: its sequence, its steps brushed."""
        if self.frame is None or not 0 <= row < len(self.frame):
            raise IndexError(f"row: expected one of the {0 if self.frame is None else len(self.frame)} matches shown")
        match = self.frame.iloc[row]
        self.explorer.set_trace(self.dataset.sequence(int(match["sequence"])))
        self.explorer.view.brush = [int(match["start"]), int(match["end"])]
        self.explorer.select(t=int(match["start"]))
        self.view.selected = row

    def _on_message(self, _view, content, _buffers) -> None:
        if content.get("type") == OPEN:
            row = content.get("row")
            if isinstance(row, bool) or not isinstance(row, int):
                raise ValueError(f"row: expected the index of a match shown, got {row!r}")
            self.open_match(row)


class CoClusterView(Still, BundledView):
    """The units x tokens response matrix ordered by cluster, with each unit cluster's ranked
    tokens (js/src/patterns.ts renderCoclusters). Selecting a cluster highlights its units in the
    linked Explorer."""

    _view = traitlets.Unicode("coclusters").tag(sync=True)
    buffer = traitlets.Bytes(b"").tag(sync=True)  # float32 (tokens, units) in display order
    units = traitlets.List(traitlets.Int()).tag(sync=True)
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    unit_clusters = traitlets.List(traitlets.Int()).tag(sync=True)
    token_clusters = traitlets.List(traitlets.Int()).tag(sync=True)
    top_tokens = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    vmax = traitlets.Float(1.0).tag(sync=True)
    cluster = traitlets.Int(-1).tag(sync=True)
    what = traitlets.Unicode("").tag(sync=True)   # what a cell's colour is, in words
    explorer_uid = traitlets.Unicode("").tag(sync=True)   # the linked Explorer's view (ExplorerView.uid)

    def __init__(self, dataset: DatasetTrace, explorer: Optional[Explorer] = None, *, n_clusters: int = 3,
                 layer: Optional[str] = None, quantity: str = "h", which: str = "mean", min_count: int = 1,
                 seed: int = 0):
        super().__init__()
        self.explorer = explorer
        self.layer, self.quantity = layer or dataset.default_layer, quantity
        self.stats = unit_stats(dataset, self.layer, quantity)
        self.clusters = cocluster(self.stats, n_clusters, which, min_count, seed)
        c = self.clusters
        ordered = c.matrix[c.unit_order][:, c.token_order]
        top = max_abs(ordered)
        with self.hold_sync():
            self.buffer = np.ascontiguousarray(ordered.T, dtype="<f4").tobytes()
            self.units = [int(u) for u in c.unit_order]
            self.tokens = [c.tokens[j] for j in c.token_order]
            self.unit_clusters = [int(k) for k in c.unit_labels[c.unit_order]]
            self.token_clusters = [int(k) for k in c.token_labels[c.token_order]]
            self.top_tokens = c.top_tokens
            self.vmax = top or 1.0
            statistic = "mean change of" if which == "change" else "mean"
            self.what = f"{statistic} {quantity} of {self.layer} at the token"
            self.explorer_uid = explorer.view.uid if explorer is not None else ""
        self.observe(self._on_cluster, names="cluster")

    def _still_png(self):
        return coclusters_png(self)

    @traitlets.validate("cluster")
    def _check_cluster(self, proposal):
        k, n = proposal["value"], len(self.top_tokens)
        if not -1 <= k < n:
            raise traitlets.TraitError(f"cluster: expected -1 (none) or a unit cluster in [0, {n}), got {k}")
        return k

    def _on_cluster(self, change) -> None:
        if self.explorer is None or change["new"] < 0:
            return
        explorer = self.explorer
        layer = explorer.trace.layers.get(self.layer)
        if layer is None or self.quantity not in layer.quantities():
            # the Explorer shows another model now: these units are not its units
            explorer.view.highlight = []
            return
        explorer.select(layer=self.layer, quantity=self.quantity)  # the units are this layer's and quantity's
        # (the view keeps only the units that layer has: a smaller model of the same name has fewer)
        explorer.view.highlight = [int(u) for u in self.clusters.units_of(change["new"])]
