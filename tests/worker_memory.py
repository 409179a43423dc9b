"""Run on dask workers by tests/test_distributed.py: importing it imports nothing heavy (no torch),
so a worker of little memory stays within its limit."""


def peak_memory(dask_worker=None, reset=False) -> int:
    """This process's peak resident memory in bytes (VmHWM), reset to the current one with ``reset``."""
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmHWM:"))
