"""The Explorer in JupyterLab + Chromium: time to first paint, time per scrub frame, browser heap.

    .venv/bin/python benchmarks/browser.py [--baseline-dir OTHER_CHECKOUT] [--rounds N]

Prints, for a 2-layer 256-unit LSTM over 1,000 steps with all quantities (about 3 million
float32 values) and for 100,000 steps x 1,024 units (sent as a window plus an overview):
- run the cell `rw.explore(trace)` -> the heatmap's first complete paint (target <= 1 s), beside
  a bqplot HeatMap of the same hidden state (the baseline: one fillRect per cell);
- the work of one scrub frame (key press -> the view, its panels and the linked slider updated,
  and that frame rendered), median and 95th percentile of 100 steps (target <= 16 ms), and the
  page's main-thread CPU time per step (which, unlike the frame times, a busy machine barely
  changes: compare two builds by it on a shared host);
- the page's JavaScript heap after a garbage collection (the long sequence must stay bounded).
With --baseline-dir, a second checkout (its front end built: rnnwidgets/static/widget.js) is
measured in the same run, each build in its own JupyterLab whose kernel imports that checkout.

How the two builds are compared (a shared host's load moves a single first paint by half its time):
- in each of --rounds rounds both builds are measured, taking turns going first (neither gains
  from the order: caches, load drifting), each in a full session (every figure above);
- the first paint, measured once per page, is measured --paints times per build and round: the
  full session's and --paints - 1 paint-only sessions, each a fresh JupyterLab, kernel and page
  running the same cells up to each Explorer (its setup, the 1,000-step Explorer, the 100,000-step
  data and Explorer; no bqplot, scrubs or heap readings), the two builds' sessions interleaved;
- each figure is printed with both builds' medians over all their measurements, the ratio of
  those medians, and the median (and range) of the paired ratios ours / baseline: one pair per
  round and session, its two measurements taken back to back, so load that drifts over the run
  cancels within a pair. The paired median is the figure to quote; where the two ratios disagree
  the run was noisy: run it again.
On a shared host compare the CPU figures (main-thread time, and of it style, layout and script):
the wall times there follow the machine's load more than the build.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import contextmanager
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


# Main-thread CPU time (Performance.getMetrics, in thread time): all, and the parts a frame spends
# on style, layout and script.
CPU_METRICS = {"ThreadTime": "CPU", "RecalcStyleDuration": "style", "LayoutDuration": "layout",
               "ScriptDuration": "script"}


def cpu_times(cdp) -> dict[str, float]:
    """The page's main-thread CPU seconds so far, in all and per CPU_METRICS part."""
    got = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {name: got.get(metric, 0.0) for metric, name in CPU_METRICS.items()}


def cpu_ms(before: dict[str, float], after: dict[str, float], per: int = 1) -> dict[str, float]:
    return {k: (after[k] - before[k]) * 1000 / per for k in before}


def median_p95(times: list) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def scrub_times(page, cdp, root, steps: int = 100, from_start: bool = False) -> tuple[list, dict[str, float]]:
    """Press -> on the view `root` (a locator) `steps` times (first Home, with `from_start`): each
    scrub frame's ms of work (SCRUB_PROBE), and the main thread's CPU ms per step (the whole
    scrub's, the kernel's replies included), in all and per CPU_METRICS part."""
    root.scroll_into_view_if_needed()
    root.focus()
    if from_start:
        page.keyboard.press("Home")
        page.wait_for_timeout(200)
    page.evaluate("() => { window.scrubTimes = []; }")
    cpu = cpu_times(cdp)
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(20)  # one press per frame, as a held key repeats
    page.wait_for_timeout(200)
    return page.evaluate("() => window.scrubTimes"), cpu_ms(cpu, cpu_times(cdp), steps)


def scrub(page, cdp, n: int, steps: int = 100) -> dict[str, float]:
    """Press -> on the n-th Explorer `steps` times: median and p95 ms of a scrub frame's work, and
    the main thread's CPU ms per step."""
    times, per_step = scrub_times(page, cdp, page.locator(".rw-explorer").nth(n), steps)
    median, p95 = median_p95(times)
    return {"median": median, "p95": p95, **per_step}


def heap_mb(cdp) -> tuple[float, float]:
    """The page's JavaScript heap after a garbage collection, and its array buffers, in MB."""
    cdp.send("HeapProfiler.collectGarbage")
    usage = cdp.send("Runtime.getHeapUsage")
    return usage["usedSize"] / 2**20, usage.get("backingStorageSize", 0) / 2**20


def heap_text(heap: tuple[float, float]) -> str:
    return f"{heap[0]:.0f} MB" + (f" + {heap[1]:.0f} MB array buffers" if heap[1] else "")


def paint(page, cdp, cell: int, painted: str) -> dict[str, float]:
    """Run `cell` until `painted` holds: the wall ms, and the main thread's CPU ms meanwhile."""
    cpu = cpu_times(cdp)
    ms = page.evaluate(RUN_UNTIL_PAINTED, [cell, painted])
    return {"ms": ms, **cpu_ms(cpu, cpu_times(cdp))}


@contextmanager
def benchmark_page(cells: list[str], checkout: Path | None = None):
    """A JupyterLab serving one notebook of `cells` (its kernel importing `checkout`'s rnnwidgets,
    and so its bundle, where given) and Chromium's page of it, the kernel idle and SCRUB_PROBE
    installed; yields the page and its CDP session (Performance metrics in thread time)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="rw-bench-") as tmp:
        base = Path(tmp)
        (base / "nb").mkdir()
        write_notebook(base / "nb" / "bench.ipynb", *cells)
        env = _jupyter_env(base / "home")
        if checkout is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(checkout), *filter(None, [env.get("PYTHONPATH")])])
        server = JupyterServer(base / "nb", env, base / "server.log")
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
                try:
                    yield page, cdp
                finally:
                    browser.close()
        finally:
            server.stop()


def measure(checkout: Path) -> dict[str, dict[str, float]]:
    """Every figure of one build (a full session): the kernel imports `checkout`'s rnnwidgets (and its bundle)."""
    got: dict[str, dict[str, float]] = {}
    with benchmark_page(CELLS, checkout) as (page, cdp):
        run_plain(page, 0)
        mb, buffers = heap_mb(cdp)
        got["heap before any view"] = {"MB": mb, "buffer MB": buffers}

        got["1k paint"] = paint(page, cdp, 1, EXPLORER_PAINTED % 0)
        wait_for_kernel_idle(page)
        got["1k bqplot"] = {"ms": page.evaluate(RUN_UNTIL_PAINTED, [2, BQPLOT_PAINTED])}
        wait_for_kernel_idle(page)
        got["1k scrub"] = scrub(page, cdp, 0)
        mb, buffers = heap_mb(cdp)
        got["1k heap"] = {"MB": mb, "buffer MB": buffers}

        run_plain(page, 3)
        got["100k paint"] = paint(page, cdp, 4, EXPLORER_PAINTED % 1)
        wait_for_kernel_idle(page)
        got["100k scrub"] = scrub(page, cdp, 1)
        mb, buffers = heap_mb(cdp)
        got["100k heap"] = {"MB": mb, "buffer MB": buffers}
    return got


PAINTS = ("1k paint", "100k paint")


def measure_paints(checkout: Path) -> dict[str, dict[str, float]]:
    """The two first paints of one build in a paint-only session: a fresh JupyterLab, kernel and
    page running the setup, the 1,000-step Explorer, the 100,000-step data and Explorer."""
    got: dict[str, dict[str, float]] = {}
    with benchmark_page([SETUP, SMALL, BIG_DATA, BIG], checkout) as (page, cdp):
        run_plain(page, 0)
        got["1k paint"] = paint(page, cdp, 1, EXPLORER_PAINTED % 0)
        wait_for_kernel_idle(page)
        run_plain(page, 2)
        got["100k paint"] = paint(page, cdp, 3, EXPLORER_PAINTED % 1)
        wait_for_kernel_idle(page)
    return got


def report(got: dict[str, dict[str, float]]) -> None:
    """The figures of one build, as sentences."""
    small, big = got["1k paint"], got["100k paint"]
    cpu = lambda s: f"main-thread CPU {s['CPU']:.1f} ms per step (style {s['style']:.1f}, layout {s['layout']:.1f}, script {s['script']:.1f})"  # noqa: E731
    print(f"page heap before any view: {heap_text((got['heap before any view']['MB'], got['heap before any view']['buffer MB']))}")
    print("2-layer 256-unit LSTM, 1,000 steps, all quantities (3.1M float32):")
    bq = got["1k bqplot"]["ms"]
    print(f"  run cell -> first paint: Explorer {small['ms']:.0f} ms, bqplot HeatMap {bq:.0f} ms "
          f"(ratio {bq / small['ms']:.1f}x; target <= 1000 ms); main-thread CPU to the Explorer's paint "
          f"{small['CPU']:.0f} ms (style {small['style']:.0f}, layout {small['layout']:.0f}, script {small['script']:.0f})")
    s = got["1k scrub"]
    print(f"  scrub frame work: median {s['median']:.1f} ms, p95 {s['p95']:.1f} ms (target <= 16 ms); {cpu(s)}")
    print(f"  page heap: {heap_text((got['1k heap']['MB'], got['1k heap']['buffer MB']))}")
    print("100,000 steps x 1,024 units (102M float32: a window of steps + a 1,024-column overview):")
    print(f"  run cell -> first paint: Explorer {big['ms']:.0f} ms; bqplot HeatMap not attempted "
          f"(102M cells, one fillRect each); main-thread CPU to its paint {big['CPU']:.0f} ms "
          f"(style {big['style']:.0f}, layout {big['layout']:.0f}, script {big['script']:.0f})")
    s = got["100k scrub"]
    print(f"  scrub frame work: median {s['median']:.1f} ms, p95 {s['p95']:.1f} ms (target <= 16 ms); {cpu(s)}")
    print(f"  page heap with both views: {heap_text((got['100k heap']['MB'], got['100k heap']['buffer MB']))}")


Figures = dict[str, dict[str, float]]


def samples(runs: list[Figures], part: str, name: str) -> list[float]:
    return [r[part][name] for r in runs if part in r]


def paired_ratios(pairs: list[tuple[Figures, Figures]], part: str, name: str) -> list[float]:
    """ours / baseline for each pair (ours, baseline) measured back to back that holds the figure."""
    return [o[part][name] / b[part][name] for o, b in pairs if part in o and part in b and b[part][name]]


def compare(pairs: list[tuple[Figures, Figures]]) -> None:
    """Each figure of both builds: their medians over all measurements, the ratio of the medians and
    the median of the paired ratios, with their range and count (below 1: ours is faster or smaller)."""
    ours, baseline = [o for o, _ in pairs], [b for _, b in pairs]
    print(f"{'figure':<28}{'ours':>10}{'baseline':>10}{'ratio':>8}{'paired':>8}  {'range':<11}{'pairs':>5}")
    for part, figures in ours[0].items():
        for name in figures:
            a, b = statistics.median(samples(ours, part, name)), statistics.median(samples(baseline, part, name))
            ratios = paired_ratios(pairs, part, name)
            paired = f"{statistics.median(ratios):.2f}" if ratios else "-"
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else ""
            print(f"{part + ' ' + name:<28}{a:>10.1f}{b:>10.1f}{(f'{a / b:.2f}' if b else '-'):>8}{paired:>8}  "
                  f"{spread:<11}{len(ratios):>5}")


def paints_report(name: str, runs: list[Figures]) -> None:
    for part in PAINTS:
        print(f"  {name} {part}: " + ", ".join(f"{r[part]['ms']:.0f} ms (CPU {r[part]['CPU']:.0f})" for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-dir", type=Path, help="another checkout of rnnwidgets, its front end built, "
                        "measured alternately with this one")
    parser.add_argument("--rounds", type=int, default=1, help="measurements of each build (medians are compared)")
    parser.add_argument("--paints", type=int, default=3, help="first paints of each build per round: the full "
                        "session's and this many minus one paint-only sessions (each a fresh JupyterLab and kernel)")
    args = parser.parse_args()
    if args.baseline_dir and not (args.baseline_dir / "rnnwidgets" / "static" / "widget.js").exists():
        parser.error(f"{args.baseline_dir} has no rnnwidgets/static/widget.js: build its front end (npm run build) first")
    pairs: list[tuple[Figures, Figures]] = []
    for r in range(max(1, args.rounds)):
        # the builds take turns going first, so neither gains from the order (caches, load drifting)
        builds = [("this checkout", REPO)]
        if args.baseline_dir:
            builds.insert(r % 2, ("baseline", args.baseline_dir.resolve()))
        full: dict[str, Figures] = {}
        for name, checkout in builds:
            full[name] = measure(checkout)
            if args.rounds > 1 or args.baseline_dir:
                print(f"round {r + 1}, {name} ({checkout}):")
            report(full[name])
        paints: dict[str, list[Figures]] = {name: [] for name, _ in builds}
        for k in range(max(0, args.paints - 1)):
            for name, checkout in (builds if k % 2 else builds[::-1]):  # the later build of the full sessions first
                paints[name].append(measure_paints(checkout))
        for name, _ in builds:
            paints_report(f"round {r + 1}, {name}, first paints of each session:", [full[name], *paints[name]])
        if args.baseline_dir:
            pairs.append((full["this checkout"], full["baseline"]))
            pairs.extend(zip(paints["this checkout"], paints["baseline"]))
    if args.baseline_dir:
        print(f"{args.rounds} round(s), {len(pairs)} pairs of first paints; ours / baseline "
              "(ratio: of the medians; paired: the median of the paired ratios):")
        compare(pairs)


if __name__ == "__main__":
    main()
