"""Test ordering: the browser tests run last; and the one fixture that restores torch's thread count.

Playwright's sync API keeps an event loop running in the main thread while its session-scoped
browser is open; tests that start their own asyncio loop must run before it exists. Fast unit
tests first also means a broken build fails in seconds, not after the browser suite.
"""
import pytest


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture
def torch_threads():
    """``torch.set_num_threads``, for a test to set its own count; the count before is restored after."""
    import torch  # here, not at the top: the browser tests' process needs no torch
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)
