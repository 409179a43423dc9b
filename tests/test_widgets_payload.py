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
        (False, kinds.describe("lstm")), (True, kinds.describe("lstm")), (False, kinds.describe("gru")),
        (False, kinds.describe("rnn"))]
    h = np.zeros((1, 2, 3), np.float32)
    cell = LayerTrace("cell", "cell", states={"h": h, "c": h}, meta={"cell": "lstm"})
    assert payload.recurrence(cell) == kinds.describe("lstm")  # an LSTMCell in a user's loop
    assert payload.recurrence(LayerTrace("m", "custom", states={"h": h})) == kinds.describe("custom")
    assert payload.recurrence(LayerTrace("c", "cell", states={"h": h}, meta={"cell": "?"})) == kinds.describe("cell")


def test_each_layer_entry_carries_its_own_time_axis():
    """Steps, this element's length and the layer's own tokens; the trace's tokens stay in the
    view's trait, named by no entry of a layer they label; a window keeps inside each layer."""
    trace = wire_fixture.fixture_trace()
    index, _ = payload.build_payload(trace, 1)
    axes = [(layer["steps"], layer["length"], layer.get("tokens", "trait")) for layer in index["layers"]]
    assert axes == [(6, 4, "trait")] * 3 + [(4, 3, ["<s>", "z", "</s>"])]
    assert [q["steps"] for q in index["layers"][3]["quantities"]] == [4]
    trace.tokens = [list("abcdef"), list("abcd")]   # shared by the 6-step layers; the short one keeps its own
    trace.validate()
    index, _ = payload.build_payload(trace, 1)
    assert [layer.get("tokens", "trait") for layer in index["layers"]] == ["trait"] * 3 + [["<s>", "z", "</s>"]]
    trace.layers["decoder.rnn.l0"].tokens = None     # the trace's 4 tokens of element 1 do not fit its 3 valid steps...
    trace.validate()                                 # ...of element 0 they do not (6 > 4 steps): no tokens, said so
    index, _ = payload.build_payload(trace, 1)
    assert index["layers"][3]["tokens"] is None
    window, _ = payload.build_payload(trace, 1, window=(2, 3), overview=("lstm.l0", "h"))
    assert [(q["t0"], q["steps"]) for layer in window["layers"] for q in layer["quantities"][:1]] == [
        (2, 3), (2, 3), (2, 3), (1, 3)]


def test_the_index_says_which_mode_the_model_was_traced_in():
    trace = wire_fixture.fixture_trace()
    assert payload.build_payload(trace, 0)[0]["training"] is None        # not recorded
    for training in (True, False):
        trace.meta["training"] = training
        assert payload.build_payload(trace, 0)[0]["training"] is training


def test_the_index_gives_the_models_step_number_of_a_windows_first_step():
    import torch

    import rnnwidgets as rw

    torch.manual_seed(0)
    model = torch.nn.GRU(2, 3, batch_first=True)
    x = torch.randn(1, 12, 2)
    assert payload.build_payload(rw.trace(model, x), 0)[0]["first_step"] == 0
    window = rw.trace(model, x, steps=slice(7, 10))
    assert payload.build_payload(window, 0)[0]["first_step"] == 7
    assert rw.explore(window).view.index["first_step"] == 7          # as the Explorer sends it
    # traces on one time axis: a window's first step only when every one holds a window from there
    again = rw.trace(model, x, steps=slice(7, 12))
    assert payload.shared_first_step([window, again]) == 7
    assert payload.shared_first_step([window, rw.trace(model, x)]) == 0
    assert payload.shared_first_step([window, rw.trace(model, x, steps=slice(8, 10))]) == 0


def test_the_packer_lays_its_arrays_end_to_end_as_float32_bytes():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((3, 4)), np.zeros((0, 5)), rng.standard_normal((6, 8))[:, ::2],
              rng.integers(0, 9, (2, 3)), np.ones((1, 7), np.float32)]
    packer = payload._Packer()
    entries = [packer.put(a, f"a{i}", {}) for i, a in enumerate(arrays)]
    data = packer.bytes()
    assert type(data) is bytes and data == b"".join(np.asarray(a, "<f4").tobytes() for a in arrays)
    floats = np.frombuffer(data, "<f4")
    for a, entry in zip(arrays, entries):
        got = floats[entry["offset"]:entry["offset"] + a.size].reshape(entry["steps"], entry["units"])
        np.testing.assert_array_equal(got, np.asarray(a, np.float32))
    assert payload._Packer().bytes() == b""
