"""rw.DynamicsView in a real JupyterLab: its three canvases draw, and the step slider moves the
readout in the browser and reaches the kernel's ``t`` once it rests."""
import pytest
from e2e_support import kernel_sees, open_in_lab, wait_for_ink, wait_for_text, write_notebook

pytestmark = pytest.mark.e2e

STEPS = 30
SHOW_DYNAMICS = f"""\
import numpy as np, torch, rnnwidgets as rw
torch.manual_seed(0)
rnn = torch.nn.RNN(2, 6, batch_first=True)
dyn = rw.dynamics(rnn, torch.randn(1, {STEPS}, 2), k=3)
fps = rw.fixed_points(rnn, layer="rnn.l0", states=dyn, n_init=8, adam_steps=20)
view = rw.DynamicsView(dyn, fps)
view"""


def test_dynamics_view_draws_and_its_slider_moves_the_step(jupyter_server, lab):
    page = lab
    write_notebook(jupyter_server.root / "dynamics.ipynb", SHOW_DYNAMICS)
    view = open_in_lab(page, "dynamics.ipynb", widget_selector=".rw-dyn")
    for name in ("plane", "spectrum", "eigen"):
        ink = wait_for_ink(view.locator(f".rw-dyn-{name}"), min_distinct=2)
        assert ink["inked"] > 50, (name, ink)
    readout = view.locator(".rw-dyn-readout")
    assert readout.inner_text().startswith("step 0 ·")
    plane_pixels = lambda: view.locator(".rw-dyn-plane").evaluate("c => c.toDataURL()")  # noqa: E731
    before = plane_pixels()
    view.locator(".rw-dyn-slider").fill("3")          # sets the value and fires input, as a drag does
    assert wait_for_text(readout, lambda s: s.startswith("step 3 ·")).startswith("step 3 ·")
    assert "nearest fixed point" in readout.inner_text()
    assert plane_pixels() != before, "the current step's marker did not move on the PCA plane"
    assert kernel_sees(page, "view.t", "3") == "3"


# a strong self-excitation: stable points, and saddles between them
SELF_EXCITED = f"""\
import torch, rnnwidgets as rw
torch.manual_seed(0)
rnn = torch.nn.RNN(3, 4, batch_first=True)
with torch.no_grad():
    rnn.weight_hh_l0.copy_(1.5 * torch.eye(4) + 0.1 * torch.randn(4, 4)); rnn.bias_hh_l0.zero_(); rnn.bias_ih_l0.zero_()
x = torch.randn(1, {STEPS}, 3)
"""

EXPLORE_DYNAMICS = SELF_EXCITED + """\
fps = rw.fixed_points(rnn, layer="rnn.l0", states=rw.dynamics(rnn, x, k=2), n_init=32, adam_steps=200)
explorer = rw.explore(rnn, x, dynamics=fps)
print(len(fps), int(fps.stable.sum()))
explorer"""

LONG = 3000
EXPLORE_LONG = f"""\
import torch, rnnwidgets as rw
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 8, batch_first=True)
explorer = rw.explore(lstm, torch.randn(1, {LONG}, 3), dynamics=True, budget=20_000)   # windows and an overview
assert explorer.view.index["lod"] is not None
explorer"""

# the x (page pixels) of the spectrum's step cursor: the accent line is alone on the canvas's top rows
# right of the heatmap's left edge (the decade labels sit left of it)
CURSOR_X = """(c, left) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, 4).data, xs = [];
  const box = c.getBoundingClientRect(), from = Math.ceil((left - box.left) * c.width / box.width);
  for (let x = Math.max(0, from); x < c.width; x++) if (d[(2 * c.width + x) * 4 + 3] > 0) xs.push(x);
  return xs.length ? box.left + (xs[0] + xs[xs.length - 1] + 1) / 2 * box.width / c.width : null;
}"""

# the best contrast of the spectrum's decade labels (the canvas's ink left of the plot, over the page's
# background) and the worst of the panel's DOM text, WCAG ratios
CONTRAST = """(args) => {
  const [c, left] = args;
  const parse = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const bgOf = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const b = parse(getComputedStyle(n).backgroundColor);
      if (b.length >= 3 && (b.length < 4 || b[3] > 0)) return b.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const lum = (rgb) => rgb.map((v) => v / 255).map((s) => (s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4))
    .reduce((a, s, i) => a + s * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const bg = bgOf(c), box = c.getBoundingClientRect();
  const margin = Math.floor((left - box.left) * c.width / box.width) - 6;   // left of the tick marks
  const d = c.getContext('2d').getImageData(0, 0, Math.max(1, margin), c.height).data;
  let labels = 0;
  for (let i = 0; i < d.length; i += 4) {
    const a = d[i + 3] / 255;
    if (a === 0) continue;
    labels = Math.max(labels, ratio([0, 1, 2].map((k) => d[i + k] * a + bg[k] * (1 - a)), bg));
  }
  let text = Infinity;
  for (const el of c.closest('.rw-dyn').querySelectorAll('.rw-dyn-caption span, .rw-dyn-readout, .rw-dyn-title')) {
    if (!el.textContent.trim() || el.getBoundingClientRect().width === 0) continue;
    let fg = parse(getComputedStyle(el).color), b = bgOf(el);
    if (fg.length > 3 && fg[3] < 1) fg = [0, 1, 2].map((k) => fg[k] * fg[3] + b[k] * (1 - fg[3]));
    text = Math.min(text, ratio(fg.slice(0, 3), b));
  }
  return {labels, text};
}"""


def _set_theme(page, theme: str, light: str):
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)


def _aligned_checker(page, box, steps):
    """check(t): the spectrum's plot spans the heatmap's columns and its cursor is at column t's centre."""
    heatmap, spectrum = box.locator(".rw-heatmap").first, box.locator(".rw-dyn-spectrum")

    def check(t):
        hb, sb = heatmap.bounding_box(), spectrum.bounding_box()
        assert sb["x"] <= hb["x"] + 1 and abs((hb["x"] + hb["width"]) - (sb["x"] + sb["width"])) <= 1, (hb, sb)
        centre = hb["x"] + (t + 0.5) / steps * hb["width"]
        for _ in range(100):   # the follower redraws on its own frame: a loaded machine may need a while
            x = spectrum.evaluate(CURSOR_X, hb["x"])
            if x is not None and abs(x - centre) <= 1.5:
                break
            page.wait_for_timeout(100)
        assert x is not None and abs(x - centre) <= 1.5, (t, x, centre)
    return check


def test_dynamics_panel_in_the_explorer_follows_the_cursor_under_the_heatmap_columns(jupyter_server, lab):
    page = lab
    from conftest import ARTIFACTS
    write_notebook(jupyter_server.root / "explore_dynamics.ipynb", EXPLORE_DYNAMICS)
    open_in_lab(page, "explore_dynamics.ipynb", widget_selector=".rw-explorer-box .rw-dyn",
                 timeout=180_000)
    box = page.locator(".rw-explorer-box").first
    found, stable = map(int, page.locator(".jp-OutputArea").first.inner_text().split()[:2])
    assert found >= 2 and 1 <= stable < found, (found, stable)   # stable and unstable points to draw
    panel, heatmap = box.locator(".rw-dyn"), box.locator(".rw-heatmap").first
    spectrum = panel.locator(".rw-dyn-spectrum")
    page.wait_for_function("() => document.querySelector('.rw-explorer-box .rw-dyn.rw-dyn-aligned')", timeout=30_000)
    assert wait_for_ink(spectrum, min_distinct=2)["inked"] > 50
    assert not panel.locator(".rw-dyn-slider").is_visible(), "the Explorer's slider drives the panel"
    check_aligned = _aligned_checker(page, box, STEPS)
    legend = panel.locator(".rw-dyn-spectrum-legend").inner_text()
    assert "σ_max" in legend and "σ_min" in legend and "running exponent" in legend
    try:
        for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
            _set_theme(page, theme, light)
            for t in (0, 7, STEPS - 1):
                box.locator(".rw-slider").first.fill(str(t))
                readout = panel.locator(".rw-dyn-readout")
                assert wait_for_text(readout, lambda s, t=t: s.startswith(f"step {t} ·")).startswith(f"step {t} ·")
                assert "σ_min" in readout.inner_text() and "nearest fixed point" in readout.inner_text()
                check_aligned(t)
            caption = panel.locator(".rw-dyn-caption").last.inner_text()
            assert caption.startswith("eigenvalues at fixed point"), caption
            assert wait_for_ink(panel.locator(".rw-dyn-eigen"), min_distinct=3)["inked"] > 50
            page.wait_for_timeout(300)     # the theme's colours re-read and redrawn
            measured = page.evaluate(f"([sel, left]) => ({CONTRAST})([document.querySelector(sel), left])",
                                     [".rw-explorer-box .rw-dyn-spectrum", heatmap.bounding_box()["x"]])
            assert measured["labels"] >= 4.5 and measured["text"] >= 4.5, (theme, measured)
            ARTIFACTS.mkdir(exist_ok=True)
            viewport = page.viewport_size
            page.set_viewport_size({"width": viewport["width"], "height": 2400})   # the whole Explorer in view
            try:
                page.wait_for_timeout(300)
                check_aligned(STEPS - 1)
                box.screenshot(path=str(ARTIFACTS / f"explorer-dynamics-{theme.split()[1].lower()}.png"))
            finally:
                page.set_viewport_size(viewport)
        assert kernel_sees(page, "explorer.dynamics.t", str(STEPS - 1)) == str(STEPS - 1)
    finally:   # the theme is a user setting of the shared server: the tests after this one run in Light
        _set_theme(page, "JupyterLab Light", "true")


def test_a_windowed_long_sequence_keeps_the_spectrum_on_the_heatmaps_axis(jupyter_server, lab):
    page = lab
    from conftest import ARTIFACTS
    write_notebook(jupyter_server.root / "explore_long.ipynb", EXPLORE_LONG)
    open_in_lab(page, "explore_long.ipynb", widget_selector=".rw-explorer-box .rw-dyn",
                 timeout=180_000)
    box = page.locator(".rw-explorer-box").first
    page.wait_for_function("() => document.querySelector('.rw-explorer-box .rw-dyn.rw-dyn-aligned')", timeout=30_000)
    assert "steps per column" in box.locator(".rw-caption").first.inner_text()    # the heatmap shows its overview
    assert wait_for_ink(box.locator(".rw-dyn-spectrum"), min_distinct=2)["inked"] > 50
    check_aligned = _aligned_checker(page, box, LONG)
    for t in (0, 1234, 2500, LONG - 1):        # past the first window: the kernel sends the next ones
        box.locator(".rw-slider").first.fill(str(t))
        readout = box.locator(".rw-dyn-readout")
        assert wait_for_text(readout, lambda s, t=t: s.startswith(f"step {t} ·")).startswith(f"step {t} ·")
        check_aligned(t)
    ARTIFACTS.mkdir(exist_ok=True)
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": 2400})
    try:
        page.wait_for_timeout(300)
        check_aligned(LONG - 1)
        box.screenshot(path=str(ARTIFACTS / "explorer-dynamics-long.png"))
    finally:
        page.set_viewport_size(viewport)


SHOW_POINTS = SELF_EXCITED + """\
dyn = rw.dynamics(rnn, x, k=2)
view = rw.DynamicsView(dyn, rw.fixed_points(rnn, layer="rnn.l0", states=dyn, n_init=32, adam_steps=200))
view"""

# Every mark and label the dynamics view's canvases draw, as the canvas itself holds its colour
# (strokeStyle / fillStyle, normalised by the browser, times globalAlpha): recorded from the
# 2D context's calls from now on. `clear` starts a canvas's new frame.
RECORD_MARKS = """() => {
  const P = CanvasRenderingContext2D.prototype;
  window.__rwMarks = [];
  const keep = (op, colour) => function (...args) {
    const cls = [...this.canvas.classList].find((c) => c.startsWith('rw-dyn-'));
    if (cls) window.__rwMarks.push({canvas: cls, op, colour: op === 'clear' ? '' : String(this[colour]),
                                    alpha: this.globalAlpha, width: this.lineWidth,
                                    text: op === 'text' ? String(args[0]) : ''});
    try { return P['__rw_' + op].apply(this, args); } catch (e) { window.__rwError = String(e); throw e; }
  };
  for (const [op, name, colour] of [['stroke', 'stroke', 'strokeStyle'], ['fill', 'fill', 'fillStyle'],
                                    ['text', 'fillText', 'fillStyle'], ['clear', 'clearRect', '']]) {
    if (!P['__rw_' + op]) P['__rw_' + op] = P[name];
    P[name] = keep(op, colour);
  }
}"""
# The 2D context's own calls back (the page is shared with the tests after this one).
STOP_RECORDING = """() => {
  const P = CanvasRenderingContext2D.prototype;
  for (const [op, name] of [['stroke', 'stroke'], ['fill', 'fill'], ['text', 'fillText'], ['clear', 'clearRect']])
    if (P['__rw_' + op]) { P[name] = P['__rw_' + op]; delete P['__rw_' + op]; }
}"""

# The colour painted behind an element (its first opaque ancestor's background, composited over
# the translucent ones above it) and the legend swatches' colours.
BACKGROUND = """(el) => {
  const parse = (s) => { const m = /rgba?\\(([^)]+)\\)/.exec(s || ''); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const bg = parse(getComputedStyle(e).backgroundColor);
    if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
  }
  let c = [255, 255, 255];
  for (const l of layers.reverse()) c = [0, 1, 2].map((k) => l[k] * l[3] + c[k] * (1 - l[3]));
  return {background: c, swatches: [...el.querySelectorAll('.rw-dyn-swatch')].map((s) => getComputedStyle(s).borderTopColor)};
}"""


def _rgb(css: str, alpha: float, background) -> list:
    """A canvas colour ('#rrggbb' or 'rgba(r, g, b, a)') painted at globalAlpha over `background`."""
    if css.startswith("#"):
        rgba = [int(css[i:i + 2], 16) for i in (1, 3, 5)] + [1.0]
    else:
        parts = [float(p) for p in css[css.index("(") + 1:-1].split(",")]
        rgba = parts + [1.0] * (4 - len(parts))
    a = rgba[3] * alpha
    return [rgba[k] * a + background[k] * (1 - a) for k in range(3)]


def test_every_mark_of_the_dynamics_view_reads_against_the_page_in_light_and_dark(jupyter_server, lab):
    """The trajectory (blue in Light, a lighter blue in Dark), the fixed points, the step's marker and
    every spectrum line keep 3:1 against the computed background, the canvases' labels 4.5:1."""
    page = lab
    from conftest import ARTIFACTS
    from test_explorer_look_browser import contrast
    write_notebook(jupyter_server.root / "dynamics_marks.ipynb", SHOW_POINTS)
    view = open_in_lab(page, "dynamics_marks.ipynb", widget_selector=".rw-dyn",
                        timeout=180_000)
    wait_for_ink(view.locator(".rw-dyn-plane"), min_distinct=3)
    page.evaluate(RECORD_MARKS)
    ARTIFACTS.mkdir(exist_ok=True)
    seen = {}
    try:
        for step, (theme, light) in ((5, ("JupyterLab Light", "true")), (6, ("JupyterLab Dark", "false"))):
            _set_theme(page, theme, light)
            page.wait_for_timeout(300)               # the theme's CSS applied and the view's colours re-read
            page.evaluate("() => { window.__rwMarks = []; }")
            view.locator(".rw-dyn-slider").fill(str(step))    # one draw of every canvas, in this theme
            wait_for_text(view.locator(".rw-dyn-readout"), lambda s, step=step: s.startswith(f"step {step} ·"))
            page.wait_for_timeout(200)
            marks = page.evaluate("() => window.__rwMarks")
            looked = view.evaluate(BACKGROUND)
            bg = looked["background"]
            plane = [m for m in marks if m["canvas"] == "rw-dyn-plane"]
            assert any(m["op"] == "clear" for m in plane), (theme, page.evaluate("() => window.__rwError"), marks[:8])
            start = max(i for i, m in enumerate(plane) if m["op"] == "clear")   # the plane's last frame
            frame = plane[start + 1:]
            trajectory = frame[0]
            assert trajectory["op"] == "stroke" and trajectory["width"] >= 1.5, frame[:3]
            ratio = contrast(_rgb(trajectory["colour"], trajectory["alpha"], bg), bg)
            assert ratio >= 3, f"{theme}: the trajectory {trajectory['colour']} on {bg}: {ratio:.2f}:1"
            seen[theme] = (trajectory["colour"], round(ratio, 2))
            assert {m["colour"] for m in frame if m["op"] in ("stroke", "fill")} >= {trajectory["colour"]}
            assert sum(m["op"] == "fill" for m in frame) >= 2 and sum(m["op"] == "stroke" for m in frame) >= 2, \
                "the fixed points (stable filled, unstable ringed) and the step's marker"
            drawn = [m for m in marks if m["op"] != "clear"]
            assert {m["canvas"] for m in drawn} == {"rw-dyn-plane", "rw-dyn-spectrum", "rw-dyn-eigen"}
            # the running exponent's halo: a stroke in the page's own colour just under its line, no mark
            halo = [i for i, m in enumerate(drawn) if m["canvas"] == "rw-dyn-spectrum" and m["op"] == "stroke"
                    and _rgb(m["colour"], m["alpha"], bg) == list(bg) and i + 1 < len(drawn)
                    and drawn[i + 1]["op"] == "stroke" and drawn[i + 1]["width"] < m["width"]]
            assert halo, (f"{theme}: no halo under the running exponent on {bg}",
                          [(m["colour"], m["alpha"], m["width"]) for m in drawn if m["canvas"] == "rw-dyn-spectrum"
                           and m["op"] == "stroke"])
            drawn = [m for i, m in enumerate(drawn) if i not in halo]
            weak = sorted({(m["canvas"], m["op"], m["colour"], m["text"],
                            round(contrast(_rgb(m["colour"], m["alpha"], bg), bg), 2)) for m in drawn
                           if contrast(_rgb(m["colour"], m["alpha"], bg), bg) < (4.5 if m["op"] == "text" else 3)})
            assert not weak, f"{theme}: marks under 3:1, labels under 4.5:1 against {bg}: {weak}"
            swatches = [contrast(_rgb(s, 1.0, bg), bg) for s in looked["swatches"]]
            assert len(swatches) == 4 and min(swatches) >= 3, (theme, looked["swatches"], swatches)
            # the canvas shows that colour: the trajectory's pixels (fully covered ones) are in it
            pixels = view.locator(".rw-dyn-plane").evaluate("""(c, css) => {
              const x = c.getContext('2d'); x.fillStyle = css; const want = x.fillStyle;
              const d = x.getImageData(0, 0, c.width, c.height).data; let n = 0;
              for (let i = 0; i < d.length; i += 4) {
                const hex = '#' + [d[i], d[i + 1], d[i + 2]].map((v) => v.toString(16).padStart(2, '0')).join('');
                if (d[i + 3] === 255 && hex === want) n++;
              }
              return n;
            }""", trajectory["colour"])
            assert pixels > 20, f"{theme}: the plane shows {pixels} pixels of the trajectory's {trajectory['colour']}"
            view.screenshot(path=str(ARTIFACTS / f"dynamics-marks-{theme.split()[1].lower()}.png"))
        assert seen["JupyterLab Light"][0] != seen["JupyterLab Dark"][0], seen   # each theme its own shade
    finally:   # the theme is a user setting of the shared server: the tests after this one run in Light
        _set_theme(page, "JupyterLab Light", "true")
        page.evaluate(STOP_RECORDING)
    print(seen)
