"""The gradient views and the monitor as a student sees them, in JupyterLab Light and Dark: every
label readable (contrast >= 4.5:1) and apart from the others, log axes labelled at decades only,
the monitor's empty charts without ticks, and the gradient cursor moving with the kernel shut down.
Screenshots of each view in each theme are saved under artifacts/."""
import re

import pytest
from conftest import ARTIFACTS
from e2e_support import block_network, kernel_execute, open_in_lab, wait_for_change, write_notebook

pytestmark = pytest.mark.e2e

STEPS = 30
FLOW = f"""\
import torch, rnnwidgets as rw
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.head = rnn, torch.nn.Linear(rnn.hidden_size, 1)
    def forward(self, x):
        return self.head(self.rnn(x)[0])
models = {{"tanh RNN": Net(torch.nn.RNN(3, 16, batch_first=True)),
          "GRU": Net(torch.nn.GRU(3, 16, batch_first=True)),
          "LSTM": Net(torch.nn.LSTM(3, 16, batch_first=True))}}
flow = rw.gradient_flow(models, torch.randn(4, {STEPS}, 3), loss=lambda out: out[:, -1].sum(), lr=0.1)
flow"""
MONITOR = """\
mon = rw.TrainingMonitor(models["LSTM"], clip=1.0)
mon"""
TRAIN = """\
model = models["LSTM"]
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(8, 30, 3), torch.randn(8, 1)
for _ in range(40):
    optimizer.zero_grad()
    loss = (model(x)[:, -1] - y).pow(2).mean()
    loss.backward()
    mon.step(loss)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
mon.finish()
print(mon.steps, mon.clipped)"""
EXPLORER = """\
explorer = rw.explore(models["LSTM"], torch.randn(1, 30, 3))   # the step timing to compare with
explorer"""

VIEWS = ".rw-gradient-flow .rw-chart, .rw-gradient-flow .rw-grid, .rw-gradient-flow .rw-steps, .rw-monitor .rw-chart"

# Every visible leaf text of each view: its box, its colour and the background painted under it
# (the first ancestor with an opaque background), both as RGBA.
TEXTS_JS = """(selector) => {
    const rgba = (s) => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
    const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const c = rgba(getComputedStyle(e).backgroundColor);
            if (c[3] > 0.5) return c;
        }
        return [255, 255, 255, 1];
    };
    const views = [...document.querySelectorAll(selector)];
    return views.map((view, v) => {
        const leaves = [...view.querySelectorAll('*')].filter((e) =>
            [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()) &&
            !['OPTION', 'SELECT', 'SCRIPT', 'STYLE'].includes(e.tagName));
        return leaves.map((e) => {
            const r = e.getBoundingClientRect();
            const style = getComputedStyle(e);
            const svg = e instanceof SVGElement;
            return {view: v, text: e.textContent.trim(), cls: e.getAttribute('class') || e.tagName,
                    box: [r.left, r.top, r.right, r.bottom], visible: r.width > 0 && r.height > 0 && style.visibility !== 'hidden',
                    colour: rgba(svg ? style.fill : style.color), background: background(e)};
        }).filter((t) => t.visible);
    }).flat();
}"""


def _luminance(rgb) -> float:
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(colour, background) -> float:
    """WCAG contrast of a (possibly translucent) text colour over an opaque background."""
    a = colour[3]
    mixed = [a * c + (1 - a) * b for c, b in zip(colour[:3], background[:3])]
    hi, lo = sorted((_luminance(mixed), _luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _overlaps(texts):
    """Pairs of text boxes of one view that overlap by more than a pixel each way."""
    found = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if a["view"] != b["view"]:
                continue
            (l1, t1, r1, b1), (l2, t2, r2, b2) = a["box"], b["box"]
            if min(r1, r2) - max(l1, l2) > 1 and min(b1, b2) - max(t1, t2) > 1:
                # a text inside its own container (a legend entry's name in the entry) is no clash
                if not (l1 <= l2 and r2 <= r1 and t1 <= t2 and b2 <= b1) and not (l2 <= l1 and r1 <= r2 and t2 <= t1 and b1 <= b2):
                    found.append((a["text"], b["text"]))
    return found


def _set_theme(page, theme: str, light: str):
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)
    page.wait_for_timeout(500)   # the theme's CSS applied


DECADE = re.compile(r"^(10[⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+|0\.1|1|10|100)$")


def _check_the_look(page, theme: str):
    texts = page.evaluate(TEXTS_JS, VIEWS)
    assert len(texts) > 40, f"{theme}: too few labels found ({len(texts)})"
    low = [(t["text"][:40], round(contrast(t["colour"], t["background"]), 2)) for t in texts
           if contrast(t["colour"], t["background"]) < 4.5]
    assert not low, f"{theme}: labels under 4.5:1 contrast: {low[:10]}"
    clashes = _overlaps(texts)
    assert not clashes, f"{theme}: labels drawn over each other: {clashes[:10]}"
    # log axes: decade labels only, and never more than fit
    log_ticks = page.evaluate("""() => [...document.querySelectorAll('.rw-chart[data-log="true"]:not(:has(.rw-chart-empty))')].map((c) =>
        [...c.querySelectorAll(c.dataset.kind === 'bars' ? '.rw-chart-tick' : '.rw-chart-tick[data-axis="y"]')]
            .map((t) => t.textContent))""")
    assert len(log_ticks) >= 4 and all(log_ticks), log_ticks
    for ticks in log_ticks:
        assert all(DECADE.match(t) for t in ticks), f"{theme}: a log axis labelled off the decades: {ticks}"
        assert len(ticks) <= 10, ticks


def test_gradient_views_read_in_light_and_dark_and_scrub_without_a_kernel(jupyter_server, lab):
    page = lab
    write_notebook(jupyter_server.root / "gradient_charts.ipynb", FLOW, MONITOR, EXPLORER)
    flow = open_in_lab(page, "gradient_charts.ipynb", ".rw-gradient-flow .rw-chart-plot")
    page.locator(".rw-monitor .rw-chart").first.wait_for(state="visible", timeout=60_000)
    flow = page.locator(".rw-gradient-flow").first
    monitor = page.locator(".rw-monitor").first
    page.wait_for_timeout(500)

    # three models on one axis: h of each, c of the LSTM; titles say c only where there is one
    time_chart = flow.locator(".rw-chart").first
    names = time_chart.locator(".rw-chart-legend-name").all_inner_texts()
    assert names == ["tanh RNN · rnn.l0 h", "GRU · rnn.l0 h", "LSTM · rnn.l0 h", "LSTM · rnn.l0 c"], names
    assert time_chart.locator("path.rw-chart-series").count() == 4
    verdicts = flow.locator(".widget-html").first.inner_text()
    assert "judged on c (dashed line)" in verdicts and "also drawn: h (solid line)" in verdicts, verdicts
    assert "formulas" not in flow.inner_text()
    # parameter names whole
    categories = flow.locator(".rw-chart-category").all_inner_texts()
    assert "LSTM · rnn.weight_ih_l0" in categories, categories
    # the monitor before any step: a sentence, no ticks
    for chart in monitor.locator(".rw-chart").all():
        assert chart.locator(".rw-chart-tick").count() == 0
        assert "mon.step(loss)" in chart.locator(".rw-chart-empty").inner_text()
    monitor.screenshot(path=str(ARTIFACTS / "monitor-empty-light.png"))
    # then some training: the monitor's charts are checked with data below, in both themes
    assert kernel_execute(page, TRAIN).split()[0] == "40"
    monitor.locator(".rw-chart path.rw-chart-series").first.wait_for(timeout=30_000)

    try:
        for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
            _set_theme(page, theme, light)
            _check_the_look(page, theme)
            name = theme.split()[1].lower()
            page.set_viewport_size({"width": 1400, "height": 3200})   # the whole view on screen at once
            page.wait_for_timeout(500)
            flow.screenshot(path=str(ARTIFACTS / f"gradient-flow-{name}.png"))
            monitor.screenshot(path=str(ARTIFACTS / f"monitor-{name}.png"))
            page.set_viewport_size({"width": 1400, "height": 1000})
    finally:   # the theme is a user setting of the shared server: the tests after this one run in Light
        page.set_viewport_size({"width": 1400, "height": 1000})
        _set_theme(page, "JupyterLab Light", "true")

    # the kernel shut down: the step control still moves every cursor, in the page
    kernel = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id")
    jupyter_server.api("DELETE", f"/api/kernels/{kernel}")
    page.wait_for_function("""() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
                                      return !k || k.status === 'dead' || k.connectionStatus !== 'connected'; }""",
                           timeout=30_000)
    cursor = time_chart.locator(".rw-chart-cursor")
    grid_cursor = flow.locator(".rw-grid .rw-cursor")
    before = (cursor.get_attribute("x1"), grid_cursor.evaluate("c => c.toDataURL()"))
    slider = flow.locator(".rw-steps .rw-slider")
    slider.focus()
    page.keyboard.press("ArrowRight")
    moved, _ = wait_for_change(lambda: cursor.get_attribute("x1"), before[0])
    assert moved != before[0], "ArrowRight did not move the chart's cursor with the kernel shut down"
    grid_moved, _ = wait_for_change(lambda: grid_cursor.evaluate("c => c.toDataURL()"), before[1])
    assert grid_moved != before[1], "the grid's cursor did not follow"
    assert flow.locator(".rw-steps .rw-step").inner_text().startswith("step 1 /")
    assert "= " in time_chart.locator(".rw-chart-value").first.inner_text()   # the value at the cursor
    # what a step costs in the page, beside the Explorer's in the same page (printed for the report,
    # not asserted: the machine is shared): the handler's own work, and until the next frame
    for name, slider in (("gradient view", ".rw-gradient-flow .rw-steps .rw-slider"), ("Explorer", ".rw-explorer .rw-slider")):
        times = page.evaluate("""async (selector) => {
            const s = document.querySelector(selector), work = [], frame = [];
            for (let k = 2; k < 22; k++) {
                const t0 = performance.now();
                s.value = String(k); s.dispatchEvent(new Event('input'));
                work.push(performance.now() - t0);
                await new Promise((r) => requestAnimationFrame(() => r()));
                frame.push(performance.now() - t0);
            }
            const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
            return [median(work), median(frame)];
        }""", slider)
        print(f"{name}: a step's handler {times[0]:.1f} ms, to the next frame {times[1]:.1f} ms (medians of 20)")
    assert flow.locator(".rw-steps .rw-step").inner_text().startswith("step 21 /")
    x = float(cursor.get_attribute("x1"))
    assert x > float(moved)


def test_the_exported_gradient_view_scrubs_offline(page, tmp_path):
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    flow = rw.gradient_flow(torch.nn.LSTM(3, 6, batch_first=True), torch.randn(2, 12, 3))
    path = flow.save_html(tmp_path / "flow.html")
    blocked = block_network(page)
    page.goto(path.as_uri())
    chart = page.locator(".rw-gradient-flow .rw-chart").first
    chart.locator("path.rw-chart-series").first.wait_for(timeout=60_000)
    cursor = chart.locator(".rw-chart-cursor")
    before = cursor.get_attribute("x1")
    page.locator(".rw-steps .rw-slider").first.focus()
    page.keyboard.press("ArrowRight")
    moved, _ = wait_for_change(lambda: cursor.get_attribute("x1"), before)
    assert moved != before, "the exported page's step control did not move the chart's cursor"
    assert page.locator(".rw-steps .rw-step").first.inner_text().startswith("step 1 /")
    assert blocked == [], f"the page asked the network for {blocked}"
