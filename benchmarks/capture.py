"""How much rw.trace costs against the module's own native forward, measured in the same run.

For a 2-layer 256-unit LSTM and GRU over 1,000 steps at batch 1 and 32, prints (median of a few
repeats after a warmup), at each thread count asked for:
  trace / native forward                              target <= 1.5 (floor about 1)
  a first trace / native forward: its arrays in memory new to the process (the memory of traces
    let go of, which capture/buffer_pool.py keeps 10 s for the next trace, handed back before it)
  trace of h and c only (quantities=("h", "c")) / native forward
  on CUDA: trace / native forward without the copy to host memory (the trace's time less that
    of one copy, as capture makes it, of as many bytes as its arrays), with and without quantities=
  trace with loss / native forward + backward         target <= 2.0
  rw.gradient_flow / native forward + backward        target <= 2.0 at batch 1
  per-step Python cell loop / native forward          the baseline users write today
and the peak memory a trace takes (peak RSS growth in a fresh process) against the bytes of the
arrays it returns (target <= 1.2 at batch 32, <= 1.5 at batch 1). Each ratio is the median over
repeats of (ours / native) timed back to back, so load from other processes on a shared machine
hits both sides of a ratio alike. By default it runs at 1 thread and at torch's default thread
count (the machine's, as a user runs it); ``--threads 1 4`` names others.

    .venv/bin/python benchmarks/capture.py [--steps 1000] [--repeats 3] [--threads 1 2] [--device cpu]
"""
import argparse
import multiprocessing
import statistics
import time

import torch
from torch import nn

from rnnwidgets import gradient_flow
from rnnwidgets.capture import buffer_pool, trace
from rnnwidgets.capture.convert import staged_copy

UNITS, LAYERS = 256, 2


def seconds(fn, device: str) -> float:
    """Wall time of ``fn()``; what it returns is freed after the clock stops (letting go of a
    trace's arrays is not part of tracing, nor the module's output part of its forward)."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def ratio(ours, native, repeats: int, device: str, before=None) -> tuple:
    """(median of ours/native over back-to-back pairs, median native seconds), after one warmup;
    ``before()`` runs untimed before each of ours."""
    ours(), native()
    pairs = []
    for _ in range(repeats):
        native_seconds = seconds(native, device)
        if before is not None:
            before()
        pairs.append((native_seconds, seconds(ours, device)))
    return statistics.median(o / n for n, o in pairs), statistics.median(n for n, _ in pairs)


def make(kind: str, batch: int, steps: int, device: str):
    torch.manual_seed(0)
    module = (nn.LSTM if kind == "LSTM" else nn.GRU)(UNITS, UNITS, num_layers=LAYERS).to(device).eval()
    x = torch.randn(steps, batch, UNITS, device=device)
    return module, x


def output_loss(output):
    return output[0].square().mean()


def cell_loop(module, x):
    """What users write today: one cell per layer, stepped in Python, with the module's weights."""
    cell_type = nn.LSTMCell if isinstance(module, nn.LSTM) else nn.GRUCell
    cells = []
    for layer in range(LAYERS):
        cell = cell_type(UNITS, UNITS).to(x.device)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data = getattr(module, f"{name}_l{layer}").data
        cells.append(cell)

    def run():
        with torch.no_grad():
            layer_in = x
            for cell in cells:
                state = None
                outs = []
                for x_t in layer_in:
                    state = cell(x_t, state)
                    outs.append(state[0] if isinstance(state, tuple) else state)
                layer_in = torch.stack(outs)
            return layer_in
    return run


def measure_time(kind: str, batch: int, steps: int, repeats: int, device: str) -> dict:
    module, x = make(kind, batch, steps, device)
    params = list(module.parameters())

    def forward():
        with torch.no_grad():
            return module(x)

    def forward_backward():
        # the module has no dropout, so training mode is the same math; cuDNN has no eval-mode backward
        module.train()
        try:
            return torch.autograd.grad(output_loss(module(x)), params)
        finally:
            module.eval()

    trace_ratio, native = ratio(lambda: trace(module, x), forward, repeats, device)
    first_ratio, _ = ratio(lambda: trace(module, x), forward, repeats, device, before=buffer_pool.release)
    states_ratio, _ = ratio(lambda: trace(module, x, quantities=("h", "c")), forward, repeats, device)
    if device == "cuda":
        copy = copy_seconds(trace(module, x), repeats)
        states_copy = copy_seconds(trace(module, x, quantities=("h", "c")), repeats)
        no_copy, states_no_copy = trace_ratio - copy / native, states_ratio - states_copy / native
    else:
        no_copy = states_no_copy = float("nan")
    grads_ratio, native_fb = ratio(lambda: trace(module, x, loss=output_loss), forward_backward, repeats, device)
    flow_ratio = ratio(lambda: gradient_flow(module, x, loss=output_loss), forward_backward, repeats,
                       device)[0] if batch == 1 else float("nan")
    loop_ratio, _ = ratio(cell_loop(module, x), forward, max(1, repeats // 2), device)
    return {"native": native, "trace": trace_ratio, "first": first_ratio, "native_fb": native_fb, "trace_fb": grads_ratio,
            "flow": flow_ratio, "loop": loop_ratio, "states": states_ratio, "no_copy": no_copy,
            "states_no_copy": states_no_copy}


def copy_seconds(tr, repeats: int) -> float:
    """Median time of one copy from the GPU into host memory (``convert.staged_copy``, as capture
    copies, into the memory of the copy before it, as a repeated trace's arrays take the memory of
    one let go of) of as many bytes as ``tr``'s arrays, its outputs and inputs."""
    arrays = [a for lt in tr.layers.values() for a in lt.quantities().values()]
    size = sum(a.nbytes for a in arrays + [a for a in (tr.outputs, tr.inputs) if a is not None]) // 4
    on_device = torch.empty(size, device="cuda")
    staged_copy(on_device)
    return statistics.median(seconds(lambda: staged_copy(on_device), "cuda") for _ in range(repeats))


def _peak_child(kind, batch, steps, device, threads, queue):
    torch.set_num_threads(threads)
    module, x = make(kind, batch, steps, device)
    trace(module, x[:2])                              # first-call setup outside the measurement
    with open("/proc/self/clear_refs", "w") as f:     # reset the peak RSS (VmHWM) to the current RSS
        f.write("5")
    before = rss_kib("VmRSS")
    tr = trace(module, x)
    peak = rss_kib("VmHWM") - before
    arrays = sum(a.nbytes for lt in tr.layers.values() for a in lt.quantities().values())
    arrays += sum(a.nbytes for a in (tr.outputs, tr.inputs) if a is not None)
    queue.put((peak * 1024, arrays))


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def measure_memory(kind: str, batch: int, steps: int, device: str, threads: int) -> tuple:
    """(peak RSS growth while tracing, bytes of the returned arrays), in a fresh process (Linux)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_peak_child, args=(kind, batch, steps, device, threads, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    default_threads = torch.get_num_threads()
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, default_threads}),
                        help=f"torch thread counts to run at (default: 1 and torch's default, {default_threads})")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    print(f"{LAYERS}-layer {UNITS}-unit modules, {args.steps} steps, {args.device}, torch {torch.__version__}, "
          f"torch's default {default_threads} thread(s); median of {args.repeats} back-to-back ratios")
    print(f"{'threads':>7} {'module':6} {'batch':>5} {'native fwd':>11} {'trace/fwd':>10} {'first/fwd':>10} "
          f"{'native f+b':>11} "
          f"{'trace+grad/f+b':>15} {'flow/f+b':>9} {'cell loop/fwd':>14} {'peak MiB':>9} {'arrays MiB':>11} "
          f"{'peak/arrays':>12} {'h,c/fwd':>8}" + (f" {'no copy':>8} {'h,c no copy':>12}" if cuda else ""))
    for threads in args.threads:
        torch.set_num_threads(threads)
        for kind in ("LSTM", "GRU"):
            for batch in (1, 32):
                r = measure_time(kind, batch, args.steps, args.repeats, args.device)
                peak, arrays = measure_memory(kind, batch, args.steps, args.device, threads)
                print(f"{threads:7d} {kind:6} {batch:5d} {r['native'] * 1e3:9.1f}ms {r['trace']:10.2f} "
                      f"{r['first']:10.2f} {r['native_fb'] * 1e3:9.1f}ms {r['trace_fb']:15.2f} {r['flow']:9.2f} {r['loop']:14.2f} "
                      f"{peak / 2**20:9.1f} {arrays / 2**20:11.1f} {peak / arrays:12.2f} {r['states']:8.2f}"
                      + (f" {r['no_copy']:8.2f} {r['states_no_copy']:12.2f}" if cuda else ""), flush=True)


if __name__ == "__main__":
    main()
