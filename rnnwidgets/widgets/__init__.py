"""Views: each widget turns a Trace into traits; dense arrays travel as float32 binary buffers.

The public names are reached through ``rnnwidgets`` (imported lazily there).
"""
