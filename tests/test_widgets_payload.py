"""The wire contract: the committed golden fixture is what rnnwidgets.widgets.payload writes now.

js/tests/decode.test.ts decodes the same files, so a change to the payload or the message types
fails there until the front end agrees, and a change there fails against these files.
"""
import json

import numpy as np
import wire_fixture

from rnnwidgets.widgets import payload


def test_committed_fixture_is_what_the_payload_module_writes():
    for name, data in wire_fixture.build().items():
        committed = (wire_fixture.FIXTURES / name).read_bytes()
        assert committed == data, (f"js/tests/fixtures/{name} differs from what the payload module writes: "
                                   "run `python tests/wire_fixture.py`, then make js/src/decode.ts agree")


def test_fixture_samples_are_found_at_the_index_offsets():
    """Python's own reading of the fixture: each sample at offset + (t - t0) * units + u."""
    doc = json.loads((wire_fixture.FIXTURES / "wire.json").read_text())
    for part in ("full", "window"):
        index = doc[part]["index"]
        floats = np.frombuffer((wire_fixture.FIXTURES / doc[part]["buffer"]).read_bytes(), "<f4")
        entries = {(layer["name"], q["name"]): q for layer in index["layers"] for q in layer["quantities"]}
        for layer, quantity, t, u, value in doc[part]["samples"]:
            e = entries[(layer, quantity)]
            assert floats[e["offset"] + (t - e.get("t0", 0)) * e["units"] + u] == np.float32(value)
    assert doc["messages"] == payload.MESSAGES
    assert doc["reply"]["message"]["type"] == payload.WINDOW


def test_layer_entries_carry_the_kinds_names_and_the_direction():
    from rnnwidgets import kinds
    from rnnwidgets.tracedata import LayerTrace

    index, _ = payload.build_payload(wire_fixture.fixture_trace())
    assert [(layer["reverse"], layer["recurrence"]) for layer in index["layers"]] == [
        (False, kinds.describe("lstm")), (True, kinds.describe("lstm")), (False, kinds.describe("gru"))]
    h = np.zeros((1, 2, 3), np.float32)
    cell = LayerTrace("cell", "cell", states={"h": h, "c": h}, meta={"cell": "lstm"})
    assert payload.recurrence(cell) == kinds.describe("lstm")  # an LSTMCell in a user's loop
    assert payload.recurrence(LayerTrace("m", "custom", states={"h": h})) == kinds.describe("custom")
    assert payload.recurrence(LayerTrace("c", "cell", states={"h": h}, meta={"cell": "?"})) == kinds.describe("cell")


def test_the_index_says_which_mode_the_model_was_traced_in():
    trace = wire_fixture.fixture_trace()
    assert payload.build_payload(trace, 0)[0]["training"] is None        # not recorded
    for training in (True, False):
        trace.meta["training"] = training
        assert payload.build_payload(trace, 0)[0]["training"] is training
