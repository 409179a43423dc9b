"""The pattern widgets: MatchPanel finds and opens an Explorer's brushed hypothesis, CoClusterView
highlights a unit cluster in it, and both refuse what makes no sense."""
import numpy as np
import pytest

from tests.test_patterns import small_dataset


def planted_dataset():
    """Three sequences; units 0 and 1 switch on together over every "(", unit 2 is noise below 0."""
    texts = ["a((b", "((a(", "b(a"]
    rows, tokens = [], []
    for text in texts:
        for ch in text:
            on = 0.9 if ch == "(" else -0.9
            rows.append([on, on, -0.5])
            tokens.append(ch)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in texts])])
    ds = small_dataset(np.array(rows, dtype=np.float32), offsets, tokens)
    ds.kinds["rnn.l0"] = "rnn"
    return ds


def test_explorer_matches_its_brushed_hypothesis():
    from rnnwidgets.widgets.explorer import Explorer
    from rnnwidgets.widgets.patterns import MatchPanel

    ds = planted_dataset()
    explorer = Explorer(ds.sequence(0))
    with pytest.raises(ValueError, match="drag over the Explorer's heatmap"):
        explorer.matches(ds)
    explorer.view.brush, explorer.view.threshold = [1, 3], 0.5  # "((" in "a((b"
    frame = explorer.matches(ds)
    assert frame.attrs["units"] == [0, 1]
    # the selection's length (2) scores 1, runs of one step 0.5
    assert frame[["sequence", "start", "end", "score"]].values.tolist() == [[0, 1, 3, 1], [1, 0, 2, 1], [1, 3, 4, 0.5],
                                                                            [2, 1, 2, 0.5]]
    panel = MatchPanel(explorer, ds, context=1)
    assert explorer.dataset is ds
    panel.find()
    assert [r["score"] for r in panel.view.rows] == [1, 1, 0.5, 0.5] and panel.view.selected == -1
    assert panel.view.explorer_uid == explorer.view.uid != "" and panel.view.quantity == "h of rnn.l0"
    first = panel.view.rows[1]
    assert (first["tokens"], first["before"], first["steps"]) == (list("((a"), 0, 3)
    values = np.frombuffer(panel.view.buffer, dtype="<f4")
    np.testing.assert_array_equal(values[first["offset"]:first["offset"] + 6].reshape(3, 2), ds.values()[4:7, :2])
    assert panel.view.context == 1
    panel._on_message(panel.view, {"type": "open", "row": 3}, [])  # as a click in the list sends
    assert explorer.trace.meta["dataset_sequence"] == 2 and explorer.trace.tokens == [list("b(a")]
    assert list(explorer.view.brush) == [1, 2] and explorer.view.t == 1
    assert panel.view.selected == 3   # the list shows which match the Explorer holds
    panel.find()
    assert panel.view.selected == -1
    with pytest.raises(TypeError, match="expected a DatasetTrace"):
        Explorer(ds.sequence(0)).matches()


def test_the_match_panels_status_wraps_and_says_its_text_as_text(monkeypatch):
    """The status is an HTML line that wraps in a narrow cell (a Label was cut at its edge,
    tests/e2e/test_look3_browser.py), so every message goes in escaped: one quoting a token
    shows "<b>" rather than making bold text."""
    from rnnwidgets.widgets.explorer import Explorer
    from rnnwidgets.widgets.patterns import MatchPanel

    ds = planted_dataset()
    explorer = Explorer(ds.sequence(0))
    panel = MatchPanel(explorer, ds, context=1)
    row = panel.children[0]
    assert row.layout.flex_flow == "row wrap" and panel.button.layout.flex == "0 0 auto"
    assert "drag over the heatmap, set θ, then find matches" in panel.status.value
    explorer.view.brush = [0, 1]   # "a": no unit is on there
    with pytest.raises(ValueError) as raised:
        panel.find()
    assert html_text(panel.status.value) == str(raised.value)
    monkeypatch.setattr(Explorer, "matches", lambda *_a, **_k: (_ for _ in ()).throw(ValueError("token <b>&</b>")))
    with pytest.raises(ValueError):
        panel.find()
    assert "<b>" not in panel.status.value and html_text(panel.status.value) == "token <b>&</b>"


def html_text(value: str) -> str:
    """The text an HTML fragment shows."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]*>", "", value))


def test_cocluster_view_highlights_a_cluster_in_the_explorer():
    from rnnwidgets.widgets.explorer import Explorer
    from rnnwidgets.widgets.patterns import CoClusterView

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, size=400)
    vocab = ["(", ")", "a", "b"]
    h = np.stack([(ids == 0) * 2.0, (ids == 0) * -2.0, (ids >= 2) * 2.0, (ids >= 2) * 1.5], axis=1)
    ds = small_dataset((h + rng.normal(0, 0.05, h.shape)).astype(np.float32), [0, 200, 400], [vocab[i] for i in ids])
    explorer = Explorer(ds.sequence(0))
    view = CoClusterView(ds, explorer, n_clusters=2)
    assert sorted(view.units) == [0, 1, 2, 3] and len(view.tokens) == 4
    assert np.frombuffer(view.buffer, dtype="<f4").shape == (16,)
    group = view.unit_clusters[view.units.index(0)]
    view.cluster = group
    assert sorted(explorer.view.highlight) == [0, 1]
    assert view.top_tokens[group][0] == "("
    assert view.what == "mean h of rnn.l0 at the token" and view.explorer_uid == explorer.view.uid
    assert CoClusterView(ds, n_clusters=2, which="change").what == "mean change of h of rnn.l0 at the token"


def test_pattern_widgets_refuse_what_makes_no_sense():
    from rnnwidgets.tracedata import LayerTrace, Trace
    from rnnwidgets.widgets.explorer import Explorer
    from rnnwidgets.widgets.patterns import CoClusterView, MatchPanel

    ds = planted_dataset()
    explorer = Explorer(ds.sequence(0))
    panel = MatchPanel(explorer, ds, context=1)
    explorer.view.brush, explorer.view.threshold = [1, 3], 0.5
    panel.find()
    with pytest.raises(ValueError, match="row: expected the index of a match shown, got 'x'"):
        panel._on_message(panel.view, {"type": "open", "row": "x"}, [])
    with pytest.raises(IndexError, match="row: expected one of the 4 matches shown"):
        panel._on_message(panel.view, {"type": "open", "row": 4}, [])

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, size=400)
    h = np.stack([(ids == 0) * 2.0, (ids == 0) * -2.0, (ids >= 2) * 2.0, (ids >= 2) * 1.5], axis=1)
    ds = small_dataset((h + rng.normal(0, 0.05, h.shape)).astype(np.float32), [0, 200, 400],
                       [["(", ")", "a", "b"][i] for i in ids])
    explorer = Explorer(ds.sequence(0))
    view = CoClusterView(ds, explorer, n_clusters=2)
    import traitlets

    with pytest.raises(traitlets.TraitError, match=r"cluster: expected -1 \(none\) or a unit cluster in \[0, 2\), got 2"):
        view.cluster = 2
    # the Explorer switches to another model: a layer of the same name with 2 units, then another layer
    group = view.unit_clusters[view.units.index(2)]       # units 2 and 3
    small = Trace(layers={"rnn.l0": LayerTrace("rnn.l0", "rnn", states={"h": np.zeros((1, 5, 2))})}, lengths=[5])
    explorer.set_trace(small)
    view.cluster = group
    assert list(explorer.view.highlight) == []            # units 2 and 3 are not the small layer's
    view.cluster = -1
    other = Trace(layers={"gru.l0": LayerTrace("gru.l0", "gru", states={"h": np.zeros((1, 5, 8))})}, lengths=[5])
    explorer.set_trace(other)
    explorer.view.highlight = [1]
    view.cluster = group
    assert list(explorer.view.highlight) == [] and explorer.view.layer == "gru.l0"
