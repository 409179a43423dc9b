"""Each Explorer interaction in a real JupyterLab, checked by what is drawn: the heatmap's pixels
against the trace's values coloured as colormap.ts does, the cursor, the step and readout text.

One notebook on one page serves every test here (a page load and kernel start cost more than all
the checks); each test first puts the Explorer in the state it needs, from the kernel.
"""
import json

import numpy as np
import pytest
from e2e_support import (
    assert_keys_drive_the_explorer,
    canvas_rgb,
    close_notebooks,
    cursor_pixels,
    kernel_execute,
    kernel_sees,
    open_in_lab,
    wait_for_change,
    wait_for_ink,
    wait_for_text,
    write_notebook,
)

from rnnwidgets.widgets import still

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=window.__pwned=1>"
STEPS, UNITS, SHORT = 12, 8, 7
EXPLORERS = f"""\
import torch, rnnwidgets as rw
from torch.nn.utils.rnn import pack_padded_sequence
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, {UNITS}, num_layers=2, batch_first=True)
tokens = [[{XSS!r} if t == 2 else f"w{{t}}" for t in range({STEPS})], [f"v{{t}}" for t in range({SHORT})]]
first = pack_padded_sequence(torch.randn(2, {STEPS}, 3), [{STEPS}, {SHORT}], batch_first=True)
explorer = rw.explore(lstm, first, tokens=tokens, interval=300)
explorer"""
TEXT_BOX = """\
vocab = "abcdefgh"
class Chars(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.lstm = torch.nn.Embedding(8, 4), torch.nn.LSTM(4, 5, batch_first=True)
        self.head = torch.nn.Linear(5, 8)
    def forward(self, ids):
        return self.head(self.lstm(self.emb(ids))[0])
typed = rw.explore(Chars(), text="abc", encode=lambda s: torch.tensor([[vocab.index(c) for c in s]]), decode=list(vocab))
typed"""
RESET = "explorer.batch.value = 0; explorer.select(layer='lstm.l1', quantity='h', unit=0, t=0)"
# What the selected heatmap must show, read in the kernel: the trace's values (the truth, not the
# payload) and the colour scale the view was sent.
SHOWN = """\
import json as _json
_v, _b = {ex}.view, {ex}.batch.value or 0
_q = next(q for l in _v.index['layers'] if l['name'] == _v.layer for q in l['quantities'] if q['name'] == _v.quantity)
print(_json.dumps({{'values': {ex}.trace.layers[_v.layer].quantities()[_v.quantity][_b].tolist(), 'scale': _q['scale'],
                   'vmin': _q['vmin'], 'vmax': _q['vmax'], 'length': int({ex}.trace.lengths[_b]),
                   'layer': _v.layer, 'quantity': _v.quantity, 'unit': _v.unit, 't': _v.t}}))"""
PADDING_GREY = np.array([205, 205, 205])


@pytest.fixture(scope="module")
def lab(lab_page, jupyter_server):
    """One JupyterLab page with both Explorers drawn."""
    write_notebook(jupyter_server.root / "explorer_interactions.ipynb", EXPLORERS, TEXT_BOX)
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_in_lab(page, "explorer_interactions.ipynb")
    page.locator(".rw-explorer").nth(1).wait_for(state="visible", timeout=60_000)
    wait_for_ink(page.locator(".rw-explorer .rw-heatmap").first, min_distinct=20)
    yield page
    close_notebooks(page)


def box(page, n=0):
    return page.locator(".rw-explorer-box").nth(n)


def view(page, n=0):
    return page.locator(".rw-explorer").nth(n)


def shown(page, ex="explorer") -> dict:
    return json.loads(kernel_execute(page, SHOWN.format(ex=ex)))


def expected_image(s: dict, order=None) -> np.ndarray:
    """(units, steps, 3): each value in its colour (still.colours is colormap.ts's twin), rows in
    `order`, steps past the element's length washed towards grey as heatmap.ts's greyed()."""
    values = np.asarray(s["values"], dtype=np.float32)
    rgb = still.colours(values.T, s["scale"], s["vmin"], s["vmax"]).astype(np.float64)
    rgb[:, s["length"]:] = np.floor(rgb[:, s["length"]:] * 0.25 + PADDING_GREY * 0.75 + 0.5)
    rgb = rgb.astype(np.uint8)
    return rgb if order is None else rgb[order]


def assert_heatmap_shows(page, s: dict, order=None, n=0):
    heatmap = view(page, n).locator(".rw-heatmap")
    want = expected_image(s, order)
    drawn = canvas_rgb(heatmap)
    for _ in range(50):  # a redraw may still be on its way
        if drawn.shape == want.shape and (drawn == want).all():
            break
        page.wait_for_timeout(100)
        drawn = canvas_rgb(heatmap)
    assert drawn.shape == want.shape, (drawn.shape, want.shape)
    wrong = np.argwhere((drawn != want).any(axis=2))
    assert len(wrong) == 0, f"{len(wrong)} cells not in their value's colour, first (unit row, step): {wrong[:5].tolist()}"


def reset(page):
    kernel_execute(page, RESET)
    page.evaluate("() => { for (const s of document.querySelectorAll('.rw-order')) "
                  "{ s.value = 'index'; s.dispatchEvent(new Event('change')); } }")
    step = view(page).locator(".rw-step")
    assert wait_for_text(step, lambda s: s.startswith(f"step 0 / {STEPS - 1}")).startswith("step 0 /")


def test_keys_step_jump_and_play_in_jupyterlab(lab):
    reset(lab)
    assert_keys_drive_the_explorer(lab, box(lab), STEPS)


def test_slider_scrubs_by_mouse(lab):
    reset(lab)
    before = cursor_pixels(lab)
    track = box(lab).locator(".rw-slider").first.bounding_box()
    lab.mouse.click(track["x"] + track["width"] - 2, track["y"] + track["height"] / 2)
    step = view(lab).locator(".rw-step")
    assert wait_for_text(step, lambda s: s.startswith(f"step {STEPS - 1} /")).startswith(f"step {STEPS - 1} /")
    assert wait_for_change(lambda: cursor_pixels(lab), before)[0] != before
    assert kernel_sees(lab, "explorer.view.t", str(STEPS - 1)) == str(STEPS - 1)  # the kernel hears of it too


def test_clicking_a_token_jumps_to_its_step(lab):
    reset(lab)
    before = cursor_pixels(lab)
    view(lab).locator(".rw-token", has_text="w5").first.click()
    step = view(lab).locator(".rw-step")
    assert wait_for_text(step, lambda s: s.startswith("step 5 /")).startswith("step 5 /")
    assert view(lab).locator(".rw-token-current").inner_text() == "w5"
    assert view(lab).locator(".rw-token-at").inner_text() == "w5"
    assert wait_for_change(lambda: cursor_pixels(lab), before)[0] != before


# The unit lines' step cursor: the columns of its canvas holding ink, and the step it stands for
# (units.ts: one CSS pixel at floor(the step's centre) of the plot's width; cursor_line.ts).
UNITS_CURSOR = """(c) => {
    const {data} = c.getContext('2d').getImageData(0, 0, c.width, c.height), inked = [];
    for (let x = 0; x < c.width; x++) if (data[4 * x + 3] > 0) inked.push(x);
    const width = Math.round(c.parentElement.getBoundingClientRect().width);
    return {inked, width, canvas: c.width};
}"""


def test_a_scrub_moves_the_unit_lines_cursor_by_drawing_it_and_moves_no_element(lab):
    """The cursor over the unit lines is drawn on its canvas: a key press changes no element there
    (a moved element makes Chromium layerize the whole page again, about 2 ms of a frame)."""
    reset(lab)
    plot = view(lab).locator(".rw-units-plot")
    plot.scroll_into_view_if_needed()
    lab.evaluate("""() => { window.__unitsMutations = [];
        window.__unitsWatch = new MutationObserver((ms) => { for (const m of ms) window.__unitsMutations.push(
            m.type + ' ' + (m.attributeName || '') + ' ' + (m.target.className || m.target.nodeName)); });
        window.__unitsWatch.observe(document.querySelector('.rw-explorer .rw-units'),
            {subtree: true, attributes: true, childList: true, characterData: true}); }""")
    view(lab).focus()
    step = view(lab).locator(".rw-step")
    cursor = plot.locator("canvas.rw-units-cursor")
    for t in (1, 2, 3):
        lab.keyboard.press("ArrowRight")
        assert wait_for_text(step, lambda s: s.startswith(f"step {t} /")).startswith(f"step {t} /")
        got = cursor.evaluate(UNITS_CURSOR)
        for _ in range(20):  # drawn in the step's frame
            if got["inked"]:
                break
            lab.wait_for_timeout(50)
            got = cursor.evaluate(UNITS_CURSOR)
        x = int((t + 0.5) / STEPS * got["width"])
        want = round(x / got["width"] * got["canvas"])
        ratio = lab.evaluate("() => Math.max(1, Math.round(window.devicePixelRatio || 1))")
        assert got["inked"] == list(range(want, want + ratio)), (t, got["inked"], want)
    mutations = lab.evaluate("() => { window.__unitsWatch.disconnect(); return window.__unitsMutations; }")
    assert mutations == [], f"a scrub changed elements of the unit lines: {mutations[:5]}"


def _cell_point(page, t, row, steps=STEPS, units=UNITS):
    image = view(page).locator(".rw-heatmap").bounding_box()
    return image["x"] + (t + 0.5) / steps * image["width"], image["y"] + (row + 0.5) / units * image["height"]


def test_hover_reads_out_unit_step_token_and_value_and_a_click_selects_them(lab):
    reset(lab)
    values = np.asarray(shown(lab)["values"])
    readout = view(lab).locator(".rw-readout")
    lab.mouse.move(*_cell_point(lab, 3, 2))
    text = wait_for_text(readout, lambda s: s.startswith("unit 2 · step 3"))
    head, value = text.split(" = ")
    assert head == "unit 2 · step 3 · w3 · h"
    assert float(value) == pytest.approx(values[3, 2], abs=5e-4)
    lab.mouse.move(5, 5)
    assert wait_for_text(readout, lambda s: s == "") == ""

    before = cursor_pixels(lab)
    lab.mouse.click(*_cell_point(lab, 7, 5))
    step = view(lab).locator(".rw-step")
    assert wait_for_text(step, lambda s: s.startswith("step 7 /")).startswith("step 7 /")
    assert wait_for_change(lambda: cursor_pixels(lab), before)[0] != before
    s = shown(lab)
    assert (s["unit"], s["t"]) == (5, 7)


def test_ordering_reorders_the_heatmap_rows(lab):
    reset(lab)
    s = shown(lab)
    assert_heatmap_shows(lab, s)
    view(lab).locator(".rw-order").select_option("variance")
    by_variance = np.argsort(-np.var(np.asarray(s["values"], dtype=np.float64), axis=0), kind="stable")
    assert list(by_variance) != list(range(UNITS))  # else the test proves nothing
    assert_heatmap_shows(lab, s, order=by_variance)
    view(lab).locator(".rw-order").select_option("index")
    assert_heatmap_shows(lab, s)


def test_layer_and_quantity_selection_draw_that_data(lab):
    reset(lab)
    view(lab).locator(".rw-quantity").select_option("forget")
    caption = view(lab).locator(".rw-caption")
    assert wait_for_text(caption, lambda c: c.startswith("forget of lstm.l1")).startswith("forget of lstm.l1")
    s = shown(lab)
    assert (s["layer"], s["quantity"], s["scale"], s["vmin"], s["vmax"]) == ("lstm.l1", "forget", "sequential", 0, 1)
    assert_heatmap_shows(lab, s)
    assert view(lab).locator(".rw-legend").inner_text().split()[:2] == ["0.000", "1.000"]
    view(lab).locator(".rw-layer").select_option("lstm.l0")
    assert wait_for_text(caption, lambda c: c.startswith("forget of lstm.l0")).startswith("forget of lstm.l0")
    s = shown(lab)
    assert (s["layer"], s["quantity"]) == ("lstm.l0", "forget")  # the quantity is kept across layers
    assert_heatmap_shows(lab, s)


def test_batch_selection_draws_that_element_with_padding_greyed(lab):
    reset(lab)
    box(lab).locator(".widget-dropdown select").select_option(label=f"1 (length {SHORT})")
    tokens = view(lab).locator(".rw-tokens")
    assert "v0" in wait_for_text(tokens, lambda s: "v0" in s)
    s = shown(lab)
    assert s["length"] == SHORT
    assert_heatmap_shows(lab, s)
    drawn = canvas_rgb(view(lab).locator(".rw-heatmap"))
    assert ((drawn[:, SHORT:] >= 153) & (drawn[:, SHORT:] <= 218)).all(), "padding steps are not greyed"
    assert ((drawn[:, :SHORT] < 153) | (drawn[:, :SHORT] > 218)).any(), "valid steps look greyed"
    view(lab).focus()
    lab.keyboard.press("End")
    step = view(lab).locator(".rw-step")
    assert wait_for_text(step, lambda t: "(padding)" in t).endswith("(padding)")


def test_tokens_are_text_and_run_nothing(lab):
    reset(lab)
    kernel_execute(lab, "explorer.select(t=2)")
    token_at = view(lab).locator(".rw-token-at")
    shown_token = XSS.replace(" ", "\u2423")  # spaces made visible
    assert wait_for_text(token_at, lambda s: s == shown_token) == shown_token
    assert shown_token[:20] in view(lab).locator(".rw-tokens").inner_text()
    lab.mouse.move(*_cell_point(lab, 2, 0))
    assert shown_token in wait_for_text(view(lab).locator(".rw-readout"), lambda s: "step 2" in s)
    assert view(lab).locator("img").count() == 0
    assert lab.locator('img[src="x"]').count() == 0
    assert lab.evaluate("() => window.__pwned") is None


def test_update_redraws_new_data_and_keeps_the_selection(lab):
    reset(lab)
    kernel_execute(lab, "explorer.select(layer='lstm.l0', quantity='forget', unit=3, t=4)")
    before = canvas_rgb(view(lab).locator(".rw-heatmap"))
    try:
        kernel_execute(lab, f"torch.manual_seed(1); explorer.update(pack_padded_sequence(torch.randn(2, {STEPS}, 3), "
                            f"[{STEPS}, 9], batch_first=True), tokens=[[f'u{{t}}' for t in range({STEPS})], ['x'] * 9])")
        tokens = view(lab).locator(".rw-tokens")
        assert "u0" in wait_for_text(tokens, lambda s: "u0" in s)
        s = shown(lab)
        assert (s["layer"], s["quantity"], s["unit"], s["t"]) == ("lstm.l0", "forget", 3, 4)
        assert_heatmap_shows(lab, s)
        assert not (canvas_rgb(view(lab).locator(".rw-heatmap")) == before).all()
        assert view(lab).locator(".rw-step").inner_text().startswith("step 4 /")
        assert view(lab).locator(".rw-caption").inner_text().startswith("forget of lstm.l0")
    finally:
        kernel_execute(lab, "explorer.update(first, tokens=tokens)")


def test_typing_in_the_text_box_reruns_the_model(lab):
    text_box = box(lab, 1).locator(".widget-text input[type=text]")
    text_box.fill("hgfedcba")
    spans = view(lab, 1).locator(".rw-token")
    shown_tokens = lambda: spans.evaluate_all(  # noqa: E731
        "spans => spans.filter(s => s.style.display !== 'none').map(s => s.textContent)")
    for _ in range(200):  # the model re-runs 0.3 s after the last key
        if shown_tokens() == list("hgfedcba"):
            break
        lab.wait_for_timeout(100)
    assert shown_tokens() == list("hgfedcba")
    s = shown(lab, "typed")
    assert np.asarray(s["values"]).shape == (8, 5)
    assert_heatmap_shows(lab, s, n=1)
