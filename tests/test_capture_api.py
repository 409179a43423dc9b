"""What users get wrong gets one sentence naming our function and what was expected."""
import pytest
import torch
from models import StepCell
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnnwidgets.capture import trace


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x, hidden=None):
        return self.head(self.lstm(x, hidden)[0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_inputs_of_another_dtype_than_the_model(dtype):
    with pytest.raises(TypeError, match=rf"^rw.trace: lstm has torch.float32 weights but got a {dtype} input; "
                                        rf"expected the module's dtype"):
        trace(Tagger(), torch.randn(2, 5, 3, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_a_hidden_state_of_another_dtype_than_the_model(dtype):
    hidden = (torch.zeros(1, 2, 4, dtype=dtype), torch.zeros(1, 2, 4, dtype=dtype))
    with pytest.raises(TypeError, match=rf"^rw.trace: lstm has torch.float32 weights but got a {dtype} initial state"):
        trace(Tagger(), torch.randn(2, 5, 3), hidden=hidden)


def test_an_lstm_under_cpu_autocast_says_how_to_trace_it():
    """CPU autocast runs nn.LSTM in bfloat16 (not nn.GRU or nn.RNN's gates): one sentence, the
    model left as found, and each way it names traces."""
    model, x = Tagger(), torch.randn(2, 5, 3)
    with torch.autocast("cpu"), pytest.raises(
            TypeError, match=r"^rw.trace: lstm is an nn.LSTM called under torch.autocast\('cpu'\), which runs it in "
                             r"torch.bfloat16; expected it traced outside the autocast block"):
        trace(model, x)
    assert "forward" not in model.lstm.__dict__ and not model.lstm._forward_hooks
    assert trace(model, x).layers["lstm.l0"].h.shape == (2, 5, 4)
    low = Tagger().to(torch.bfloat16)
    assert trace(low, x.to(torch.bfloat16)).layers["lstm.l0"].h.shape == (2, 5, 4)
    with torch.autocast("cpu"):
        assert trace(nn.GRU(3, 4), torch.randn(5, 2, 3)).layers["gru.l0"].h.shape == (2, 5, 4)


def test_batch_zero():
    with pytest.raises(ValueError, match=r"^rw.trace: lstm got a batch of 0 sequences; expected at least one"):
        trace(Tagger(), torch.randn(0, 5, 3))
    with pytest.raises(ValueError, match=r"step module inputs: a batch of 0 sequences; expected at least one"):
        trace(StepCell(), torch.randn(5, 0, 3))


def test_a_model_on_the_meta_device():
    with torch.device("meta"):
        model = Tagger()
    with pytest.raises(ValueError, match=r"^rw.trace: expected a model with values, but 'lstm.weight_ih_l0' is on "
                                         r"the 'meta' device"):
        trace(model, torch.randn(2, 5, 3))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_scripted_module():
    scripted = torch.jit.script(nn.LSTM(3, 4))
    with pytest.raises(TypeError, match=r"^rw.trace: expected a torch.nn.Module as the model, got a "
                                        r"torch.jit.script-ed module \(pass the nn.Module it was scripted from\)"):
        trace(scripted, torch.randn(5, 2, 3))
    model = nn.Sequential(torch.jit.script(nn.Linear(3, 3)), nn.GRU(3, 4))
    with pytest.raises(TypeError, match=r"^rw.trace: expected plain torch.nn.Modules, but '0' is a torch.jit.script"):
        trace(model, torch.randn(5, 2, 3))


def test_loss_under_inference_mode():
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^rw.trace: loss= needs gradients, which "
                                                                   r"torch.inference_mode\(\) turns off"):
        trace(Tagger(), torch.randn(2, 5, 3), loss="last")
    with torch.inference_mode():
        assert trace(Tagger(), torch.randn(2, 5, 3)).batch == 2   # without a loss it runs


def test_a_packed_sequence_with_a_zero_length():
    # three sequences of lengths 2, 1 and 0: the data holds steps for two of them
    packed = PackedSequence(torch.randn(3, 3), torch.tensor([2, 1]), torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"^rw.trace: lstm got a PackedSequence of 3 sequences of which only 2 have "
                                         r"steps; expected every length to be at least 1"):
        trace(packed_lstm(), packed)


def packed_lstm():
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4)

        def forward(self, packed):
            return self.lstm(packed)[0]
    return Packed()


# A model with forward(input, hidden) and an nn.GRU inside (the word language model's shape) is run
# whole first and driven step by step only when that call fails; an error in what was asked of the
# trace once the whole run went through is raised alone, as one sentence, not as "both failed".
class WholeWithHidden(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4)

    def forward(self, input, hidden):
        return self.rnn(input, hidden)


@pytest.mark.parametrize("asked, said", [
    ({"tokens": [["a", "b"]] * 2}, r"^tokens\[0\]: expected 5 tokens \(its length\), got 2$"),
    ({"steps": slice(6, 8)}, r"^rw.trace: steps: the window starts at step 6, past the end of 'rnn.l0', which runs 5 "
                             r"steps \(0–4\); expected a start below 5, or layers= leaving 'rnn.l0' out$"),
    ({"edits": "clamp"}, r"^rw.trace: rw.clamp\('rnn.l0', 'h', .*\) names no step of 'rnn.l0', which ran 5 steps; "
                         r"expected steps in \[0, 5\)$"),
])
def test_an_error_in_what_was_asked_of_a_whole_run_is_not_retried_step_by_step(asked, said):
    import rnnwidgets as rw

    if asked.get("edits") == "clamp":
        asked = {"edits": [rw.clamp("rnn.l0", "h", [0], [7], 0.0)]}
    with pytest.raises(Exception, match=said) as error:
        trace(WholeWithHidden(), torch.randn(5, 2, 3), **asked)
    assert "one step at a time" not in str(error.value)
