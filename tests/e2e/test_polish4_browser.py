"""The Explorer's dynamics spectrum and text box as a reader sees them, measured in a real
JupyterLab (one page, one notebook for the module): the decade labels sit against their tick
marks, the running exponent reads against the σ_max band and the page in Light and Dark, and the
text box leaves no empty row under it."""
import pytest
from e2e_support import close_notebooks, in_each_theme, open_in_lab, wait_for_ink, write_notebook

pytestmark = pytest.mark.e2e

LONG = 2500
LONG_DYNAMICS = f"""\
import torch, torch.nn as nn, rnnwidgets as rw
torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 8, batch_first=True)
long = rw.explore(lstm, torch.randn(1, {LONG}, 3), dynamics=True)
long"""

TEXT_BOX = """\
torch.manual_seed(0)
vocab = list("()ab")
class Chars(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.rnn, self.head = nn.Embedding(4, 8), nn.GRU(8, 6, batch_first=True), nn.Linear(6, 4)
    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])
typed = rw.explore(Chars(), text="(a(b)a)", encode=lambda s: torch.tensor([[vocab.index(c) for c in s]]), decode=vocab)
typed"""

# Per label of the spectrum's margin (a run of inked rows left of the tick marks, above the step
# axis): the px between its rightmost ink and the tick mark's left end. `left`: the plot's left
# edge, page x (the heatmap's); the tick marks run from 4 px left of it.
LABEL_GAPS = """(c, left) => {
  const box = c.getBoundingClientRect(), scale = c.width / box.width;
  const tick = Math.round((left - box.left) * scale) - 4, h = c.height - 18;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const gaps = [];
  let right = -1;
  for (let y = 0; y <= h; y++) {
    let row = -1;
    for (let x = 0; x < tick - 1; x++) if (d[(y * c.width + x) * 4 + 3] > 40) row = x;
    if (row >= 0) right = Math.max(right, row);
    else if (right >= 0) { gaps.push(tick - 1 - right); right = -1; }
  }
  return {gaps, tick};
}"""

# The running exponent's line on the spectrum: its colour (the legend's swatch), the page's
# background, and per plot column where the line is, the colours of the 3 px beyond its edges above
# and below (what the eye sees it against), all as [r, g, b].
EXPONENT = """(c, left) => {
  const panel = c.closest('.rw-dyn');
  const parse = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  let bg = [255, 255, 255];
  for (let n = c; n; n = n.parentElement) {
    const b = parse(getComputedStyle(n).backgroundColor);
    if (b.length >= 3 && (b.length < 4 || b[3] > 0)) { bg = b.slice(0, 3); break; }
  }
  const key = [...panel.querySelectorAll('.rw-dyn-key')].find((k) => k.textContent.includes('running exponent'));
  const line = parse(getComputedStyle(key.querySelector('.rw-dyn-swatch')).borderTopColor).slice(0, 3);
  const box = c.getBoundingClientRect(), x0 = Math.round((left - box.left) * c.width / box.width);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const rgb = (x, y) => { const i = (y * c.width + x) * 4, a = d[i + 3] / 255;
    return [0, 1, 2].map((k) => d[i + k] * a + bg[k] * (1 - a)); };
  const near = (p) => Math.max(...p.map((v, k) => Math.abs(v - line[k]))) <= 24;
  const columns = [];
  for (let x = x0 + 2; x < c.width - 2; x++) {
    const ys = [];
    for (let y = 2; y < c.height - 20; y++) if (near(rgb(x, y))) ys.push(y);
    if (!ys.length) continue;
    const top = ys[0], bottom = ys[ys.length - 1];
    if (bottom - top > 6) continue;   // a steep stretch (the first steps): the line runs along this column
    columns.push({x, above: [1, 2, 3].map((k) => rgb(x, top - k)), below: [1, 2, 3].map((k) => rgb(x, bottom + k))});
  }
  return {line, bg, plot: c.width - x0, columns};
}"""

# The px from the text box's bottom to the top of the next thing shown under it (a child that
# shows nothing, no text and no control, is passed over), and between the Explorer's own rows
# (transport, bar, ...), the spacing the other controls keep.
GAPS = """(box) => {
  const shows = (c) => c.getBoundingClientRect().height > 0 &&
    (c.innerText.trim() !== '' || c.querySelector('input, select, canvas, button') !== null);
  const gaps = (children) => { const shown = [...children].filter(shows);
    return shown.slice(1).map((c, i) => c.getBoundingClientRect().top - shown[i].getBoundingClientRect().bottom); };
  const kids = [...box.children], from = kids.findIndex((c) => c.classList.contains('widget-text'));
  const text = kids[from], next = kids.slice(from + 1).find(shows);
  return {text: next.getBoundingClientRect().top - text.getBoundingClientRect().bottom,
          rows: gaps(box.querySelector('.rw-explorer').children).slice(0, 3)};
}"""


def _luminance(rgb) -> float:
    s = [v / 255 for v in rgb]
    s = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in s]
    return 0.2126 * s[0] + 0.7152 * s[1] + 0.0722 * s[2]


def _ratio(a, b) -> float:
    x, y = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (x + 0.05) / (y + 0.05)


@pytest.fixture(scope="module")
def lab(lab_page, jupyter_server):
    """The session's Lab page for the module: the 2,500-step Explorer with its dynamics, and the text box's."""
    write_notebook(jupyter_server.root / "polish4.ipynb", LONG_DYNAMICS, TEXT_BOX)
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 2400})
    open_in_lab(page, "polish4.ipynb", widget_selector=".rw-explorer-box .rw-dyn", timeout=300_000)
    page.wait_for_function("() => document.querySelector('.rw-explorer-box .rw-dyn.rw-dyn-aligned')", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.rw-explorer-box').length === 2", timeout=120_000)
    yield page
    close_notebooks(page)


def _spectrum(lab):
    box = lab.locator(".rw-explorer-box").first
    spectrum = box.locator(".rw-dyn-spectrum")
    wait_for_ink(spectrum, min_distinct=3)
    return box, spectrum, box.locator(".rw-heatmap").first.bounding_box()["x"]


def test_the_decade_labels_sit_against_their_tick_marks(lab):
    from conftest import ARTIFACTS
    box, spectrum, left = _spectrum(lab)

    def check(theme):
        lab.wait_for_timeout(300)
        ARTIFACTS.mkdir(exist_ok=True)
        box.locator(".rw-dyn-aligned-row").screenshot(path=str(ARTIFACTS / f"polish4-spectrum-{theme}.png"))
        measured = spectrum.evaluate(LABEL_GAPS, left)
        assert len(measured["gaps"]) >= 2, measured      # at least two labels
        assert all(2 <= gap <= 6 for gap in measured["gaps"]), (theme, measured)
    in_each_theme(lab, check)


def test_the_running_exponent_reads_against_the_band_and_the_page(lab):
    box, spectrum, left = _spectrum(lab)

    def check(theme):
        lab.wait_for_timeout(300)
        m = spectrum.evaluate(EXPONENT, left)
        assert _ratio(m["line"], m["bg"]) >= 3, (theme, m["line"], m["bg"])
        columns = m["columns"]
        assert len(columns) >= 0.8 * m["plot"], (theme, len(columns), m["plot"])   # drawn above the band, seen
        # an edge on each side: within 3 px of the line, a pixel at 3:1 against it (the band or
        # the page; antialiasing blends the first one)
        beside = [min(max(_ratio(m["line"], p) for p in c["above"]), max(_ratio(m["line"], p) for p in c["below"]))
                  for c in columns]
        clear = sum(r >= 3 for r in beside) / len(beside)
        assert clear >= 0.95, (theme, clear, sorted(beside)[:5])
    in_each_theme(lab, check)


def test_the_text_box_sits_as_close_to_the_next_control_as_the_other_controls(lab):
    from conftest import ARTIFACTS
    typed = lab.locator(".rw-explorer-box").nth(1)
    ARTIFACTS.mkdir(exist_ok=True)

    def shot(theme):
        typed.screenshot(path=str(ARTIFACTS / f"polish4-textbox-{theme}.png"))
    in_each_theme(lab, shot)
    gaps = typed.evaluate(GAPS)
    assert gaps["rows"] and gaps["text"] <= max(gaps["rows"]) + 2, gaps
    # the line that says why a text was not run still shows when there is something to say
    problem = typed.locator(":scope > .widget-label").first
    box = typed.locator(".widget-text input").first
    box.fill("(a(x")
    problem.wait_for(state="visible", timeout=20_000)
    assert problem.inner_text().startswith("not run:"), problem.inner_text()
    box.fill("(a(b)a)")
    problem.wait_for(state="hidden", timeout=20_000)
