"""What a student sees of the Explorer, measured in JupyterLab Light and Dark from the DOM and the
pixels: every label's contrast, no two labels on top of each other, each token over its heatmap
column at 12, 60, 80 and 200 steps, the quickstart's dashboard on one 1400x900 screen, and its
counting unit's row spanning half the colour scale. Screenshots of each view go to artifacts/."""
import numpy as np
import pytest
from conftest import ARTIFACTS
from e2e_support import close_notebooks, open_in_lab, wait_for_ink, write_notebook
from test_colour_limits_browser import _row_span, _set_theme

pytestmark = pytest.mark.e2e

STEPS = (12, 60, 80, 200)
# Explorers of one small LSTM over 12..200 steps, tokens of one to seven characters.
SEQUENCES = """\
import torch, rnnwidgets as rw
torch.manual_seed(0)
small = torch.nn.LSTM(3, 10, batch_first=True)
words = ["a", "the", "(", "state", "xyzzy42", ")", "of"]
tokens = {n: [words[t % len(words)] if t % 5 else f"w{t}" for t in range(n)] for n in STEPS}
explorers = {n: rw.explore(small, torch.randn(1, n, 3), tokens=[tokens[n]]) for n in tokens}
""".replace("STEPS", repr(STEPS))
SHOW = "explorers[{n}]"

# JavaScript: every piece of text drawn in an element (its text nodes, SVG text included), with
# its box and the colours it is painted in: text over the first painted background beneath it.
TEXTS_JS = """(root) => {
    const parse = (css) => {
        const m = /rgba?\\(([^)]+)\\)/.exec(css || '');
        if (!m) return null;
        const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
        return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top, bottom) => [0, 1, 2].map((k) => top[k] * top[3] + bottom[k] * (1 - top[3]));
    const backgroundOf = (el) => {   // composite the translucent backgrounds down to an opaque one
        const layers = [];
        for (let e = el; e; e = e.parentElement) {
            const bg = parse(getComputedStyle(e).backgroundColor);
            if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
        }
        let colour = [255, 255, 255];
        for (const layer of layers.reverse()) colour = over(layer, colour);
        return colour;
    };
    const shown = (el) => {
        for (let e = el; e && e !== document.body; e = e.parentElement) {
            const s = getComputedStyle(e);
            if (s.display === 'none' || s.visibility === 'hidden' || Number(s.opacity) === 0) return false;
            if (e.tagName === 'DETAILS' && !e.open && e.firstElementChild !== el.closest('summary')) return false;
        }
        return true;
    };
    const out = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const el = node.parentElement;
        if (!node.textContent.trim() || !el || el.closest('style, option, title, select')) continue;
        if (!shown(el)) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        // one box per line: a text wrapped over lines is not one rectangle over its neighbours
        const lines = [...range.getClientRects()].filter((r) => r.width >= 1 && r.height >= 1);
        if (!lines.length) continue;
        const style = getComputedStyle(el);
        const svg = el instanceof SVGElement;
        let fg = parse(svg ? style.fill : style.color);
        const bg = backgroundOf(el);
        if (fg[3] < 1) fg = [...over(fg, bg), 1];
        for (const r of lines) {
            out.push({text: node.textContent.trim().slice(0, 40), cls: el.className.baseVal ?? el.className,
                      x: r.left, y: r.top, w: r.width, h: r.height, fg: fg.slice(0, 3), bg});
        }
    }
    return out;
}"""

LUMA = np.array([0.2126, 0.7152, 0.0722])


def contrast(a, b) -> float:
    def lum(c):
        s = np.asarray(c, dtype=float) / 255
        return float(LUMA @ np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4))
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def overlaps(texts, tolerance=1.0):
    """Pairs of text boxes that cover each other by more than `tolerance` pixels both ways."""
    out = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if dx > tolerance and dy > tolerance:
                out.append((a["text"], a["cls"], b["text"], b["cls"]))
    return out


@pytest.fixture(scope="module")
def sequences(lab_page, jupyter_server):
    """One Explorer per length in STEPS, each in its own cell, on a 1400x900 page."""
    write_notebook(jupyter_server.root / "explorer_tokens.ipynb", SEQUENCES, *(SHOW.format(n=n) for n in STEPS))
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 900})
    open_in_lab(page, "explorer_tokens.ipynb")
    page.locator(".rw-explorer").nth(len(STEPS) - 1).wait_for(state="visible", timeout=60_000)
    for k in range(len(STEPS)):
        wait_for_ink(page.locator(".rw-explorer .rw-heatmap").nth(k), min_distinct=20)
    page.wait_for_timeout(500)
    yield page
    close_notebooks(page)


def texts_of(page, n=0):
    return page.locator(".rw-explorer").nth(n).evaluate(TEXTS_JS)


def in_both_themes(page, check):
    """Run `check(theme)` in JupyterLab Light, then Dark, then put Light back (a shared setting)."""
    try:
        for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
            _set_theme(page, theme, light)
            page.wait_for_timeout(600)  # the theme's CSS applied and the canvases repainted
            check(theme.split()[1].lower())
    finally:
        _set_theme(page, "JupyterLab Light", "true")


def test_every_label_reads_and_none_overlap_in_light_and_dark(quickstart):
    page = quickstart
    ARTIFACTS.mkdir(exist_ok=True)

    def check(theme):
        texts = texts_of(page)
        assert len(texts) > 40, f"{theme}: only {len(texts)} labels found: {[t['text'] for t in texts]}"
        poor = [(t["text"], t["cls"], round(contrast(t["fg"], t["bg"]), 2), t["fg"], t["bg"])
                for t in texts if contrast(t["fg"], t["bg"]) < 4.5]
        assert not poor, f"{theme}: labels under 4.5:1 contrast: {poor}"
        assert not overlaps(texts), f"{theme}: labels drawn over each other: {overlaps(texts)}"
        page.locator(".rw-explorer").first.screenshot(path=str(ARTIFACTS / f"explorer-look-{theme}.png"))

    in_both_themes(page, check)


def test_the_quickstart_dashboard_fits_one_1400x900_screen(quickstart):
    page = quickstart
    explorer = page.locator(".rw-explorer").first
    explorer.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(200)
    # what of the page the notebook shows: its scrolling panel, inside the 1400x900 window
    visible = page.evaluate("""() => {
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')
            || document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
        const r = panel.getBoundingClientRect();
        return {top: Math.max(0, r.top), bottom: Math.min(window.innerHeight, r.bottom),
                left: Math.max(0, r.left), right: Math.min(window.innerWidth, r.right)};
    }""")
    height = explorer.bounding_box()["height"]
    for name, selector in [("heatmap", ".rw-heatmap"), ("tokens", ".rw-token-row"), ("state at t", ".rw-bars"),
                           ("cell view", ".rw-cellview"), ("unit lines", ".rw-units-plot")]:
        box = explorer.locator(selector).first.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 10, f"{name}: not drawn ({box})"
        inside = (box["x"] >= visible["left"] - 1 and box["x"] + box["width"] <= visible["right"] + 1
                  and box["y"] >= visible["top"] - 1 and box["y"] + box["height"] <= visible["bottom"] + 1)
        assert inside, f"{name} at {box} is not within the visible notebook {visible} (Explorer {height:.0f} px tall)"
    page.screenshot(path=str(ARTIFACTS / "explorer-look-1400x900.png"))


def test_the_counting_unit_spans_half_the_colour_scale_under_default_limits(quickstart):
    page = quickstart
    unit, corr, lo, hi, _ = page.quickstart_counter
    assert float(corr) > 0.9, f"no unit of c counts the depth (best correlation {corr})"
    assert not page.locator(".rw-explorer .rw-per-unit").first.is_checked()  # the default limits
    span = _row_span(page, int(unit))
    assert span >= 0.5, f"the counting unit {unit} (c {lo}..{hi}) spans {span:.0%} of the colour scale"
    # the selected row is drawn between two lines across the whole heatmap (the cursor's overlay)
    cursor = page.locator(".rw-explorer .rw-cursor").first
    alpha = np.array(cursor.evaluate("""(c) => {
        const {data} = c.getContext('2d').getImageData(0, 0, c.width, c.height);
        const rows = [];
        for (let y = 0; y < c.height; y++) {
            let painted = 0;
            for (let x = 0; x < c.width; x++) painted += data[4 * (y * c.width + x) + 3] > 0;
            rows.push(painted / c.width);
        }
        return rows;
    }"""))
    height = len(alpha)
    top, bottom = int(unit) * height / 16, (int(unit) + 1) * height / 16
    lines = np.flatnonzero(alpha > 0.95)
    assert any(abs(y - top) <= 2 for y in lines) and any(abs(y - bottom) <= 2 for y in lines), \
        f"no line across the heatmap at the selected row's edges ({top:.0f}, {bottom:.0f}): {lines.tolist()}"


def _token_columns(page, n):
    """Each labelled token's step, the centre of its text and its heatmap column's left and right."""
    return page.locator(".rw-explorer").nth(n).evaluate("""(root) => {
        const image = root.querySelector('.rw-heatmap').getBoundingClientRect();
        const steps = Number(root.querySelector('.rw-slider').max) + 1;
        const out = [];
        for (const span of root.querySelectorAll('.rw-token')) {
            const text = span.querySelector('.rw-token-text');
            if (span.style.display === 'none' || !text || !text.textContent) continue;
            const range = document.createRange();
            range.selectNodeContents(text);
            const r = range.getBoundingClientRect();
            const t = Number(span.dataset.t);
            out.push({t, text: text.textContent, centre: r.left + r.width / 2,
                      left: image.left + t * image.width / steps, right: image.left + (t + 1) * image.width / steps});
        }
        return {steps, out};
    }""")


@pytest.mark.parametrize("width", [1400, 900])
def test_each_token_sits_over_its_heatmap_column(sequences, width):
    page = sequences
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(800)  # the strips re-laid out at the new width
    try:
        for k, n in enumerate(STEPS):
            got = _token_columns(page, k)
            assert got["steps"] == n
            labelled = got["out"]
            assert len(labelled) >= min(n, 12), f"{n} steps at {width} px: only {len(labelled)} tokens labelled"
            off = [(c["t"], c["text"], round(c["centre"] - c["left"], 1), round(c["right"] - c["left"], 1))
                   for c in labelled if not c["left"] - 0.5 <= c["centre"] <= c["right"] + 0.5]
            assert not off, f"{n} steps at {width} px: tokens off their column (t, text, centre, column width): {off[:8]}"
            texts = texts_of(page, k)
            assert not overlaps(texts), f"{n} steps at {width} px: labels over each other: {overlaps(texts)[:5]}"
            if width == 1400:
                page.locator(".rw-explorer").nth(k).screenshot(path=str(ARTIFACTS / f"explorer-look-{n}-steps.png"))
    finally:
        page.set_viewport_size({"width": 1400, "height": 900})


def test_the_pointer_has_a_crosshair_an_outlined_cell_and_a_tooltip_beside_it(sequences):
    page = sequences
    explorer = page.locator(".rw-explorer").first
    explorer.scroll_into_view_if_needed()
    image = explorer.locator(".rw-heatmap").bounding_box()
    steps, units, t, row = 12, 10, 4, 6
    x, y = image["x"] + (t + 0.5) * image["width"] / steps, image["y"] + (row + 0.5) * image["height"] / units
    page.mouse.move(x, y)
    tooltip = explorer.locator(".rw-readout")
    tooltip.wait_for(state="visible")
    assert tooltip.inner_text().startswith(f"unit {row} · step {t} · xyzzy42 · h = ")
    tip = tooltip.bounding_box()
    gap = max(tip["x"] - x, x - (tip["x"] + tip["width"]), tip["y"] - y, y - (tip["y"] + tip["height"]))
    assert 0 < gap <= 30, f"the tooltip {tip} is not beside the pointer ({x:.0f}, {y:.0f})"
    cell = explorer.locator(".rw-hover-cell").bounding_box()
    want = (image["x"] + t * image["width"] / steps, image["y"] + row * image["height"] / units,
            image["width"] / steps, image["height"] / units)
    assert np.allclose([cell["x"], cell["y"], cell["width"], cell["height"]], want, atol=1.0), (cell, want)
    across = explorer.locator(".rw-hover-row").bounding_box()
    down = explorer.locator(".rw-hover-column").bounding_box()
    assert abs(across["y"] - y) <= 1 and across["width"] == pytest.approx(image["width"], abs=1)
    assert abs(down["x"] - x) <= 1 and down["height"] == pytest.approx(image["height"], abs=1)
    page.mouse.move(2, 2)
    assert explorer.locator(".rw-hover-cell").is_hidden() and tooltip.is_hidden()


# The state bars' labels: each label's box, the width of its text, and where its bars begin.
BARS_LABELS_JS = """(bars) => [...bars.querySelectorAll('.rw-bars-label')].map((label) => {
    const range = document.createRange();
    range.selectNodeContents(label);
    const box = label.getBoundingClientRect();
    const canvas = label.parentElement.querySelector('canvas').getBoundingClientRect();
    return {text: label.textContent, box: box.width, right: box.right, ink: range.getBoundingClientRect().width,
            bars: canvas.left};
})"""


def test_the_state_bars_label_column_fits_its_labels_in_light_and_dark(quickstart):
    """The labels' column is as wide as the longest label the held steps write: at step 30 no
    wider than the widest label shown by 3 characters, none clipped, the bars just after it."""
    page = quickstart
    ARTIFACTS.mkdir(exist_ok=True)
    bars = page.locator(".rw-explorer .rw-bars").first

    def check(theme):
        labels = bars.evaluate(BARS_LABELS_JS)
        assert len(labels) == 6, labels   # an LSTM layer: h, c and four gates
        widest = max(labels, key=lambda label: label["ink"])
        char = widest["ink"] / len(widest["text"])
        for label in labels:
            assert label["ink"] <= label["box"] + 0.5, f"{theme}: {label['text']!r} clipped: {label}"
            assert label["box"] - widest["ink"] <= 3 * char, \
                f"{theme}: a gap of {(label['box'] - widest['ink']) / char:.1f} characters after the labels: {labels}"
            assert 0 <= label["bars"] - label["right"] <= 8, f"{theme}: the bars do not follow the label: {label}"
        bars.screenshot(path=str(ARTIFACTS / f"explorer-bars-{theme}.png"))

    in_both_themes(page, check)
