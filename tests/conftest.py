"""Test ordering: the browser tests run last.

Playwright's sync API keeps an event loop running in the main thread while its session-scoped
browser is open; tests that start their own asyncio loop must run before it exists. Fast unit
tests first also means a broken build fails in seconds, not after the browser suite.
"""


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
