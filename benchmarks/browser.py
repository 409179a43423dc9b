"""The Explorer in JupyterLab + Chromium: time to first paint, time per scrub frame, browser heap.

    .venv/bin/python benchmarks/browser.py

Prints, for a 2-layer 256-unit LSTM over 1,000 steps with all quantities (about 3 million
float32 values) and for 100,000 steps x 1,024 units (sent as a window plus an overview):
- run the cell `rw.explore(trace)` -> the heatmap's first complete paint (target <= 1 s), beside
  a bqplot HeatMap of the same hidden state (the baseline: one fillRect per cell);
- the work of one scrub frame (key press -> the view, its panels and the linked slider updated,
  and that frame rendered), median and 95th percentile of 100 steps (target <= 16 ms), and the
  page's main-thread CPU time per step (which, unlike the frame times, a busy machine barely
  changes: compare two builds by it on a shared host);
- the page's JavaScript heap after a garbage collection (the long sequence must stay bounded).
Reuses the browser tests' JupyterLab fixture code (tests/e2e/conftest.py).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from conftest import CHROMIUM, CHROMIUM_ARGS, JupyterServer, _jupyter_env  # noqa: E402
from e2e_support import wait_for_kernel_idle, write_notebook  # noqa: E402

SETUP = """\
import numpy as np, torch, bqplot as bq, rnnwidgets as rw
from rnnwidgets.tracedata import LayerTrace, Trace
torch.manual_seed(0)
model = torch.nn.LSTM(64, 256, num_layers=2, batch_first=True)
tr = rw.trace(model, torch.randn(1, 1000, 64))  # the capture has its own benchmark (capture.py)"""
SMALL = "small = rw.explore(tr); small"
BQPLOT = """\
h = small.trace.layers["lstm.l1"].h[0].T
bq.Figure(marks=[bq.HeatMap(color=h, scales={"x": bq.LinearScale(), "y": bq.LinearScale(),
                                              "color": bq.ColorScale(scheme="RdBu")})])"""
BIG_DATA = """\
rng = np.random.default_rng(0)
big_h = np.tanh(rng.standard_normal((1, 100_000, 1024), dtype=np.float32))
big_trace = Trace(layers={"rnn.l0": LayerTrace("rnn.l0", "rnn", states={"h": big_h})}, lengths=[100_000])"""
BIG = "big = rw.explore(big_trace); big"
CELLS = [SETUP, SMALL, BQPLOT, BIG_DATA, BIG]

# Runs cell `i` and resolves with the ms until `painted()` holds on an animation frame (and one
# frame more, so the paint itself is done).
RUN_UNTIL_PAINTED = """async ([i, painted]) => {
    const check = new Function('return (' + painted + ')()');
    const nb = window.jupyterapp.shell.currentWidget.content;
    nb.activeCellIndex = i;
    const t0 = performance.now();
    window.jupyterapp.commands.execute('notebook:run-cell');
    const frame = () => new Promise(requestAnimationFrame);
    while (!check()) {
        await frame();
        if (performance.now() - t0 > 300000) throw new Error('no paint within 300 s');
    }
    await frame();
    return performance.now() - t0;
}"""
# The n-th Explorer heatmap exists and its middle pixel is drawn.
EXPLORER_PAINTED = """() => {
    const c = document.querySelectorAll('.rw-explorer .rw-heatmap')[%d];
    return c && c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data[3] > 0;
}"""
BQPLOT_PAINTED = """() => {
    const img = document.querySelector('image.heatmap');
    const href = (img && img.getAttribute('href')) || '';
    return href.startsWith('data:image/png') && href.length > 10000;
}"""
# Times each key press: its handlers (capture phase -> after every handler and a forced layout)
# plus the rendering of the frame that shows it (from that frame's animation callback to the
# first task after it); waiting for the display's next frame is not work and is not counted.
SCRUB_PROBE = """() => {
    window.scrubTimes = [];
    let start = 0;
    window.addEventListener('keydown', () => { start = performance.now(); }, true);
    window.addEventListener('keydown', () => {
        document.body.offsetHeight;
        const handlers = performance.now() - start;
        requestAnimationFrame(() => {
            const frame = performance.now();
            const channel = new MessageChannel();
            channel.port1.onmessage = () => window.scrubTimes.push(handlers + performance.now() - frame);
            channel.port2.postMessage(0);
        });
    }, false);
}"""


def run_plain(page, i: int) -> None:
    page.evaluate("(i) => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = i;"
                  " window.jupyterapp.commands.execute('notebook:run-cell'); }", i)
    page.wait_for_timeout(300)
    wait_for_kernel_idle(page, timeout=300_000)


def thread_time(cdp) -> float:
    """The page's main-thread CPU time so far, in seconds."""
    return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "ThreadTime")


def scrub(page, cdp, n: int, steps: int = 100) -> tuple[float, float, float]:
    """Press -> on the n-th Explorer `steps` times: median and p95 ms of a scrub frame's work, and
    the main thread's CPU ms per step (the whole scrub's, the kernel's replies included)."""
    page.evaluate("() => { window.scrubTimes = []; }")
    root = page.locator(".rw-explorer").nth(n)
    root.scroll_into_view_if_needed()
    root.focus()
    cpu = thread_time(cdp)
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(20)  # one press per frame, as a held key repeats
    page.wait_for_timeout(200)
    cpu = (thread_time(cdp) - cpu) * 1000 / steps
    times = sorted(page.evaluate("() => window.scrubTimes"))
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], cpu


def heap_mb(cdp) -> str:
    cdp.send("HeapProfiler.collectGarbage")
    usage = cdp.send("Runtime.getHeapUsage")
    extra = usage.get("backingStorageSize")
    return f"{usage['usedSize'] / 2**20:.0f} MB" + (f" + {extra / 2**20:.0f} MB array buffers" if extra else "")


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="rw-bench-") as tmp:
        base = Path(tmp)
        (base / "nb").mkdir()
        write_notebook(base / "nb" / "bench.ipynb", *CELLS)
        server = JupyterServer(base / "nb", _jupyter_env(base / "home"), base / "server.log")
        try:
            server.wait_ready()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
                page.goto(server.lab_url("bench.ipynb"))
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget")
                wait_for_kernel_idle(page, timeout=120_000)
                page.evaluate(SCRUB_PROBE)
                run_plain(page, 0)
                print(f"page heap before any view: {heap_mb(cdp)}")

                cpu = thread_time(cdp)
                small_ms = page.evaluate(RUN_UNTIL_PAINTED, [1, EXPLORER_PAINTED % 0])
                small_cpu = (thread_time(cdp) - cpu) * 1000
                wait_for_kernel_idle(page)
                bq_ms = page.evaluate(RUN_UNTIL_PAINTED, [2, BQPLOT_PAINTED])
                wait_for_kernel_idle(page)
                median, p95, cpu = scrub(page, cdp, 0)
                print("2-layer 256-unit LSTM, 1,000 steps, all quantities (3.1M float32):")
                print(f"  run cell -> first paint: Explorer {small_ms:.0f} ms, bqplot HeatMap {bq_ms:.0f} ms "
                      f"(ratio {bq_ms / small_ms:.1f}x; target <= 1000 ms); main-thread CPU to the Explorer's paint "
                      f"{small_cpu:.0f} ms")
                print(f"  scrub frame work: median {median:.1f} ms, p95 {p95:.1f} ms (target <= 16 ms); "
                      f"main-thread CPU {cpu:.1f} ms per step")
                print(f"  page heap: {heap_mb(cdp)}")

                run_plain(page, 3)
                cpu = thread_time(cdp)
                big_ms = page.evaluate(RUN_UNTIL_PAINTED, [4, EXPLORER_PAINTED % 1])
                big_cpu = (thread_time(cdp) - cpu) * 1000
                wait_for_kernel_idle(page)
                median, p95, cpu = scrub(page, cdp, 1)
                print("100,000 steps x 1,024 units (102M float32: a window of steps + a 1,024-column overview):")
                print(f"  run cell -> first paint: Explorer {big_ms:.0f} ms; bqplot HeatMap not attempted "
                      f"(102M cells, one fillRect each); main-thread CPU to its paint {big_cpu:.0f} ms")
                print(f"  scrub frame work: median {median:.1f} ms, p95 {p95:.1f} ms (target <= 16 ms); "
                      f"main-thread CPU {cpu:.1f} ms per step")
                print(f"  page heap with both views: {heap_mb(cdp)}")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
