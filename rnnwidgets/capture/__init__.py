"""Capture: torch in, Trace out. Imports no widget code."""
from .api import trace
from .recording import record, recording

__all__ = ["trace", "recording", "record"]
