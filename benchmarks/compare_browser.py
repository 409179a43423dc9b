"""rw.compare in JupyterLab + Chromium: one step's work, beside the Explorer's in the same page.

    .venv/bin/python benchmarks/compare_browser.py

A 2-layer 256-unit LSTM over 1,000 tokens, run on two inputs that differ from step 500: the
Explorer of run A and the comparison of A and B share the page. Each is scrubbed with → (100
presses, interleaved twice, so a busy machine weighs on both alike) and the script prints, for
each, the median and 95th percentile of a step's work (key press -> handlers, a forced layout and
the frame that shows it: benchmarks/browser.py's probe; target <= 16 ms) and the main thread's
CPU per step, then the ratios compare / Explorer; and the time from running the cell to the
comparison's first paint.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from browser import (  # noqa: E402  (the Explorer's benchmark: its server, page, probe and timings)
    RUN_UNTIL_PAINTED,
    benchmark_page,
    median_p95,
    run_plain,
    scrub_times,
    wait_for_kernel_idle,
)

SETUP = """\
import torch, rnnwidgets as rw
torch.manual_seed(0)
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(50, 64)
        self.lstm = torch.nn.LSTM(64, 256, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(256, 50)
    def forward(self, ids):
        return self.head(self.lstm(self.embed(ids))[0])
model = Model().eval()
ids_a = torch.randint(0, 50, (1, 1000))
ids_b = ids_a.clone(); ids_b[0, 500] = (ids_b[0, 500] + 1) % 50
words = [f"w{i}" for i in range(50)]
tokens = lambda ids: [[words[i] for i in ids[0].tolist()]]
tr_a = rw.trace(model, ids_a, tokens=tokens(ids_a))
tr_b = rw.trace(model, ids_b, tokens=tokens(ids_b))"""
EXPLORE = "ex = rw.explore(tr_a, decode=words); ex"
COMPARE = "cmp = rw.compare(tr_a, tr_b, decode=words); cmp"
CELLS = [SETUP, EXPLORE, COMPARE]
COMPARE_PAINTED = """() => {
    const c = document.querySelector('.rw-compare .rw-cmp-panel-diff .rw-heatmap');
    return c && c.width > 1 && c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data[3] > 0;
}"""


def main() -> None:
    with benchmark_page(CELLS) as (page, cdp):
        run_plain(page, 0)
        run_plain(page, 1)
        page.locator(".rw-explorer").first.wait_for(state="visible", timeout=120_000)
        paint_ms = page.evaluate(RUN_UNTIL_PAINTED, [2, COMPARE_PAINTED])
        wait_for_kernel_idle(page)
        page.wait_for_timeout(1000)
        runs: dict = {".rw-explorer": ([], []), ".rw-compare": ([], [])}
        for _ in range(2):
            for selector, (times, cpus) in runs.items():
                t, cpu = scrub_times(page, cdp, page.locator(selector).first, from_start=True)
                times.extend(t)
                cpus.append(cpu["CPU"])
        print("2-layer 256-unit LSTM, 1,000 tokens, B's input changed at step 500:")
        print(f"  run cell -> the comparison's first paint: {paint_ms:.0f} ms")
        got = {}
        for selector, (times, cpus) in runs.items():
            median, p95 = median_p95(times)
            got[selector] = (median, statistics.mean(cpus))
            print(f"  {selector[4:]}: one step's work median {median:.1f} ms, p95 {p95:.1f} ms over "
                  f"{len(times)} steps (target <= 16 ms); main-thread CPU {statistics.mean(cpus):.1f} ms per step")
        (cm, cc), (em, ec) = got[".rw-compare"], got[".rw-explorer"]
        print(f"  ratio compare / Explorer: step work {cm / em:.2f}, main-thread CPU {cc / ec:.2f}")


if __name__ == "__main__":
    main()
