"""How much Python memory a call allocates at its peak (tracemalloc): the hostile-file tests assert
that refusing a forged file allocates little, whatever size the file claims."""
import tracemalloc


def peak_allocated(call) -> int:
    """The peak bytes traced while ``call()`` runs (its result is dropped; what it raises propagates)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
