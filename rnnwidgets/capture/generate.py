"""``rw.generate``: let a token model write its continuation, under edits, and trace the whole run.

    tr = rw.generate(model, prompt, steps=50, edits=[rw.clamp("lstm.l0", "c", [3], None, 0.0)], decode=vocab)

The model maps token ids (batch, time) to logits (batch, time, vocab) through one or more
nn.LSTM / nn.GRU / nn.RNN, or through nn.LSTMCell / GRUCell / RNNCell run over the steps in its
own loop (not both), every other op acting on each step alone (an embedding, a linear head, a
``log_softmax``): the stock language model, also ``forward(ids, hidden)`` and (time, batch) with
flattened logits as the word language model has it (``TokenCall``). It runs once on the prompt
and then on one token at a time, each recurrent layer starting where its previous call ended: while it runs, each fused
module runs layer by layer (fused.py) and each layer is handed the state its last call returned
instead of the one the model passes in; a cell's first call in each forward is handed its last
output as its hidden instead of what the model passes. So the cost is one step per token, never
the prefix again. Edits act inside that recurrence (edited.py), at every step they name,
generated ones included. A step module ``forward(input, hidden)`` that reads one (batch,) token a
call (spro's char-rnn) fails on the whole prompt, and is then fed the prompt one token a call too.
A model of float features (no token to feed back), an empty prompt or ids its embedding lacks are
refused in one sentence (``FEATURES`` names what to use instead).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import nn

from ..tracedata import Trace
from .build import TraceBuilder
from .call import (
    ModelCall,
    default_hidden,
    device_and_dtype,
    ids_explained,
    main_output,
    out_of_vocabulary,
    refuse_scripted,
    unwrap,
)
from .cells import cell_kind, remove_hooks
from .convert import to_numpy
from .edited import EditedLayers
from .edits import check_all_found, check_edits, describe
from .fused import Direction, LayerByLayer, LayerRun, fused_modules
from .fused_trace import layer_arrays, merge_calls
from .recording import HookRecording
from .untouched import kept

WHO = "rw.generate"


def generate(model: nn.Module, prompt, steps: int, edits=None, decode: Union[Sequence[str], Callable, None] = None,
             temperature: float = 0.0, seed: Optional[int] = None) -> Trace:
    """Generate ``steps`` tokens after ``prompt``, each fed back as the next input, and return
    the Trace of prompt + continuation (module doc for the models it runs).

    ``prompt``: token ids, (batch, time) or (time,), a tensor or a list. ``edits``: ``rw.clamp`` /
    ``rw.patch`` edits, steps counted from the prompt's first token. ``temperature`` 0 takes the
    most likely token; above 0 samples from softmax(logits / temperature), with ``seed`` for a
    repeatable draw. ``decode``: a vocabulary list or an ``id -> str`` function for the tokens.

    The Trace holds every token fed in, the prompt and the ``steps`` generated (the last one too,
    so its logits predict past the end): ``tr.tokens`` their labels, ``tr.meta["token_ids"]`` the
    ids, ``tr.meta["prompt_steps"]`` where the continuation starts, ``tr.outputs`` the logits,
    ``tr.meta["edits"]`` the edits. The model is left as found.
    """
    model = unwrap(model)
    refuse_scripted(WHO, model, children=False)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{WHO}: expected a torch.nn.Module as the model, got {type(model).__name__}")
    edits = check_edits(WHO, edits)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{WHO}: steps: expected a whole number of tokens to generate, at least 1, got {steps!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not \
            (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"{WHO}: temperature: expected a finite number >= 0 (0: the most likely token), "
                         f"got {temperature!r}")
    check_model(model)
    device, _ = device_and_dtype(model)
    ids = prompt_ids(prompt, device)
    # ids past the one embedding refused before the model runs: on a GPU its refusal is a device-side assert
    single = sum(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in model.modules()) == 1
    refused = out_of_vocabulary(WHO, model, [ids]) if single else None
    if refused is not None:
        raise refused
    generator = None
    if temperature > 0:
        generator = torch.Generator(device=device)
        if seed is not None:
            generator.manual_seed(int(seed))
        else:
            generator.seed()
    call = TokenCall(model)
    if not fused_modules(model):
        return generate_with_cells(model, call, ids, steps, edits, decode, temperature, generator)
    state = generator.get_state() if generator is not None else None
    prompt = ids
    call.time_major = call.reads_time_first(prompt)
    whole: Optional[Unread] = None
    while True:
        carried = CarriedState(EditedLayers(WHO, edits) if edits else None)
        try:
            with kept(model), torch.no_grad(), LayerByLayer(model, carried) as recorder:
                ids, logits = run_tokens(call, prompt, steps, temperature, generator, carried.next_call,
                                         lambda: call.check_layout(recorder.runs, prompt))
                runs = recorder.runs
            break
        except TimeMajor:         # a (time, batch) model such as the word language model: run it so
            call.time_major = True
            if generator is not None and state is not None:
                generator.set_state(state)
        except Unread as e:       # a step module that reads one token a call (spro's char-rnn): the prompt so too
            if call.one_token and whole is not None:
                raise whole from e   # it fails a token a call too: the whole prompt's failure is the error
            if call.one_token or prompt.shape[1] == 1 or not call.call.is_step_module():
                raise
            whole, call.one_token = e, True
            if generator is not None and state is not None:
                generator.set_state(state)
    if edits:
        assert carried.editor is not None
        check_all_found(WHO, edits, carried.editor.seen)
    return build_trace(model, runs, ids, logits, decode, edits, prompt_steps=len(ids[0]) - steps)


def run_tokens(call: "TokenCall", ids: torch.Tensor, steps: int, temperature: float, generator,
               between, after_prompt=None) -> tuple:
    """(every id fed in (batch, prompt + steps), the logits of each (batch, prompt + steps, vocab)):
    the model on the prompt, then on each token it chose; ``between()`` after each call,
    ``after_prompt()`` once after the first."""
    logits, fed = [], ids
    for k in range(steps + 1):
        if k == 0 and call.one_token:       # the prompt a token a call, each from the state the last left
            outs = []
            for j in range(fed.shape[1]):
                if j:
                    between()
                outs.append(call(fed[:, j:j + 1], after_prompt if j == 0 else None))
            out = torch.cat(outs, 1)
        else:
            out = call(fed, after_prompt if k == 0 else None)
        logits.append(out)
        if k == steps:
            break
        fed = next_token(out[:, -1], temperature, generator)
        ids = torch.cat([ids, fed], 1)
        between()
    return ids, torch.cat(logits, 1)


def generate_with_cells(model: nn.Module, call: "TokenCall", ids: torch.Tensor, steps: int, edits: list, decode,
                        temperature: float, generator) -> Trace:
    """``generate`` for a model running cells in its own loop: recorded as ``rw.trace`` records it
    (recording.py), each cell's calls one step after another over every forward."""
    with kept(model), torch.no_grad():
        with HookRecording(model, deferred=True, edits=edits, who=WHO) as rec, CarriedCells(model) as carried:
            ids, logits = run_tokens(call, ids, steps, temperature, generator, carried.next_forward)
    builder = rec.collected
    assert builder is not None  # a deferred recording collects its layers when the block ends
    builder.caller, builder.meta["source"] = WHO, "generate"
    finish(builder, model, ids, logits, decode, edits, prompt_steps=ids.shape[1] - steps)
    return builder.build(batch=ids.shape[0])


def check_model(model: nn.Module) -> None:
    """A clear error for a model rw.generate cannot run one token at a time."""
    modules = fused_modules(model)
    cells = any(cell_kind(m) for m in model.modules())
    if not modules and not cells:
        raise TypeError(f"{WHO}: expected a model holding an nn.LSTM / nn.GRU / nn.RNN (or cells in its own loop) "
                        f"that maps token ids (batch, time) to logits (batch, time, vocab); {type(model).__name__} "
                        "has none")
    if modules and cells:
        raise TypeError(f"{WHO}: expected either nn.LSTM / nn.GRU / nn.RNN modules or cells in the model's own loop; "
                        f"{type(model).__name__} holds both")
    for path, module in modules:
        if module.bidirectional:
            raise ValueError(f"{WHO}: {path or type(module).__name__} is bidirectional; generating one token at a "
                             "time needs every recurrent module to run forward only")


# what to use instead for a model with no token to feed back, the end of every sentence refusing one
FEATURES = ("a model that reads float features has no token to feed back: trace its sequence with "
            "rw.trace(model, inputs), its own loop included (e.g. kwargs={'future': n})")
# the same for a model with an embedding that lays the ids out its own way (the tagger tutorial's one
# unbatched sentence, ``embeds.view(len(sentence), 1, -1)``)
KEPT_STATE = ("the state its forward passed has another batch (a state it keeps between calls, such as "
              "self.hidden): reset it for the prompt's batch first")
OWN_LAYOUT = ("a model that lays out its embedded ids its own way (one unbatched sentence) cannot be fed a "
              "(batch, time) prompt: trace its sequence with rw.trace(model, inputs)")


def prompt_ids(prompt, device) -> torch.Tensor:
    """The prompt as int64 ids (batch, time) on ``device``, or a clear error."""
    try:
        ids = torch.as_tensor(prompt)
    except (TypeError, ValueError, RuntimeError):
        ids = None
    got = None
    if ids is None:
        got = type(prompt).__name__
    elif ids.numel() == 0:     # (before the dtype: [] is a float tensor)
        got = f"an empty prompt (shape {tuple(ids.shape)}): generation starts from the prompt's last token"
    elif ids.dtype.is_floating_point or ids.dtype.is_complex:
        got = f"floating-point values of shape {tuple(ids.shape)}; {FEATURES}"
    elif ids.dim() not in (1, 2):
        got = f"{type(prompt).__name__} of shape {tuple(ids.shape)}"
    elif ids.dtype == torch.bool:
        got = f"booleans of shape {tuple(ids.shape)}"
    elif bool((ids < 0).any()):
        got = f"negative ids ({int(ids.min())})"
    if got is not None:
        raise ValueError(f"{WHO}: prompt: expected token ids (batch, time) or (time,), whole numbers >= 0, at least "
                         f"one, got {got}")
    assert ids is not None
    ids = ids.to(device=device, dtype=torch.long)
    return ids.unsqueeze(0) if ids.dim() == 1 else ids


class TimeMajor(Exception):
    """The model read the prompt (batch, time) as (time, batch): run it again time-major."""


class Unread(ValueError):
    """The model failed on the ids it was given (the sentence says what rw.generate feeds it)."""


class TokenCall:
    """How ``rw.generate`` calls the model on token ids (batch, time) and reads its logits.

    The forward is called as every entry point calls it (call.py): a ``hidden`` parameter after
    the ids gets the model's ``init_hidden(batch)`` (the state each layer then carries is
    rnnwidgets' own, CarriedState). A model whose first recurrent module reads (time, batch) and
    that was handed the prompt so (the word language model) is fed ids (time, batch) and its
    logits, (time, batch, vocab) or flattened to (time·batch, vocab), are read back as such.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.call = ModelCall(model, who=WHO)
        self.time_major = False
        self.one_token = False      # a step module fed the prompt one token a call

    def __call__(self, fed: torch.Tensor, check=None) -> torch.Tensor:
        """The model's logits (batch, time, vocab) for ``fed`` (batch, time), or a clear error;
        ``check()`` right after the model ran."""
        x = fed.t() if self.time_major else fed
        # one token a call: the model's own first state for this batch (its time-major nn.RNN would read
        # the (batch, 1) ids as one sequence of ``batch`` steps)
        hidden = default_hidden(self.model, fed.shape[0], *device_and_dtype(self.model)) if self.one_token else None
        try:
            bound = self.call.whole(x, hidden, fused=True)
        except TypeError as e:
            needs = str(e).split("; it would call")[0].removeprefix(f"{WHO}: ")
            raise TypeError(f"{WHO}: expected a model called as model(ids) with ids (batch, time), or "
                            f"model(ids, hidden); {needs}") from e
        args, kwargs = bound.at(x)
        try:
            with ids_explained(WHO, self.model, [fed]):
                out = self.model(*args, **kwargs)
        except RuntimeError as e:     # torch's own error on the ids (a dtype, a shape): a model without an
            if any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in self.model.modules()):
                raise                 # embedding, which read them as values
            layout = "time, batch" if self.time_major else "batch, time"
            raise TypeError(f"{WHO}: expected a model that reads token ids ({layout}) and returns logits (an "
                            f"nn.Embedding first), as it feeds each chosen id back; "
                            f"{type(self.model).__name__} has no nn.Embedding and failed on the ids {tuple(x.shape)}: "
                            f"{str(e).splitlines()[0]}; {FEATURES}") from e
        except (TypeError, ValueError) as e:
            if isinstance(e, TypeError) and "argument" in str(e):
                raise TypeError(f"{WHO}: expected a model called as model(ids) with ids (batch, time); calling "
                                f"{type(self.model).__name__} so failed: {e}") from e
            if not str(e).startswith("rw.trace: "):
                raise          # the model's own error, as it is
            raise self.unread(x, e) from e
        if check is not None:
            check()
        out = main_output(out)
        batch, time = fed.shape
        rows = (time, batch) if self.time_major else (batch, time)
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == batch * time:
            out = out.reshape(*rows, out.shape[1])     # logits flattened to (rows, vocab)
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or tuple(out.shape[:2]) != rows:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{WHO}: expected the model to map token ids {tuple(x.shape)} "
                             f"({'time, batch' if self.time_major else 'batch, time'}) to logits "
                             f"({'time, batch' if self.time_major else 'batch, time'}, vocab), got {shape}")
        return out.transpose(0, 1) if self.time_major else out

    def unread(self, x: torch.Tensor, e: Exception) -> Exception:
        """A recurrent module refused what the model made of the ids (rw.trace's check of its input:
        the model reads features, one-hot vectors, or one token a call): one sentence saying what
        rw.generate feeds it."""
        layout = "time, batch" if self.time_major else "batch, time"
        return (TypeError if isinstance(e, TypeError) else Unread)(
            f"{WHO}: expected a model that reads token ids ({layout}) and returns logits (an nn.Embedding "
            f"first), as it feeds each chosen id back; {type(self.model).__name__} failed on the ids "
            f"{tuple(x.shape)}: {str(e).splitlines()[0]}; {self.instead(e)}")

    def instead(self, e: Exception) -> str:
        """What to do instead, by what the recurrent module refused."""
        if "initial state" in str(e):      # a state the model keeps between calls, of another batch
            return KEPT_STATE
        return OWN_LAYOUT if any(isinstance(m, nn.Embedding) for m in self.model.modules()) else FEATURES

    def reads_time_first(self, prompt: torch.Tensor) -> bool:
        """For a square prompt (batch = time > 1), where the run cannot tell: whether the model's
        first recurrent module reads a (batch, 1) slice of it as one sequence of ``batch`` steps."""
        batch, time = prompt.shape
        first = next((m for _, m in fused_modules(self.model)), None)
        if batch != time or batch == 1 or first is None or first.batch_first:
            return False
        seen: list = []
        handle = first.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        try:
            with kept(self.model), torch.no_grad():
                x = prompt[:, :1]
                args, kwargs = self.call.whole(x, None, fused=True).at(x)
                self.model(*args, **kwargs)
        except (RuntimeError, ValueError):
            pass                # what the module was handed is what tells (a one-token model fails past it)
        finally:
            handle.remove()
        return bool(seen) and isinstance(seen[0], torch.Tensor) and seen[0].dim() == 3 and seen[0].shape[1] == 1

    def check_layout(self, runs: list, prompt: torch.Tensor) -> None:
        """After the prompt's call: raise TimeMajor when the first recurrent layer ran over the
        prompt's time steps as its batch (a (time, batch) model handed (batch, time))."""
        if self.time_major or not runs:
            return
        batch, time = prompt.shape
        if batch != time and runs[0].h0.shape[1] == time and not runs[0].module.batch_first:
            raise TimeMajor


def next_token(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    """(batch, 1) ids: the most likely at temperature 0, else a draw from softmax(logits / T)."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    probs = torch.softmax(logits.double() / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator)


class CarriedState:
    """A ``LayerByLayer`` run_layer that starts each layer from the state its previous call ended
    in (after the first call, which starts from what the model passes), runs it (edited where
    ``editor`` says, edited.py) and keeps the state it ends in."""

    def __init__(self, editor: Optional[EditedLayers]):
        self.editor = editor
        self.calls = 0
        self.last: dict = {}    # (module path, layer) -> its state after its last call, kernel layout

    def next_call(self) -> None:
        self.calls += 1

    def __call__(self, run: LayerRun, x, hx):
        key = (run.module_path, run.layer)
        if self.calls and key in self.last:
            hx = self.last[key]
            if isinstance(hx, list):
                run.h0, run.c0 = hx[0].detach(), hx[1].detach()
            else:
                run.h0 = hx.detach()
        result = self.editor(run, x, hx) if self.editor is not None else run.forward(x, hx)
        self.last[key] = [result[1], result[2]] if run.module.mode == "LSTM" else result[1]
        return result


class CarriedCells:
    """Hooks handing each cell, at its first call in each forward after the first, its last
    output as its hidden (in place of the model's own initial state); ``next_forward()`` between
    forwards."""

    def __init__(self, model: nn.Module):
        self.cells = [m for m in model.modules() if cell_kind(m)]
        self.last: dict = {}       # cell -> its last output
        self.started: set = set()  # cells called in this forward
        self.forwards = 0
        self._handles: list = []

    def __enter__(self) -> "CarriedCells":
        for cell in self.cells:
            self._handles.append(cell.register_forward_pre_hook(self._enter, with_kwargs=True))
            self._handles.append(cell.register_forward_hook(self._leave))
        return self

    def __exit__(self, *exc):
        remove_hooks(self._handles)
        self.last.clear()
        return False

    def next_forward(self) -> None:
        self.forwards += 1
        self.started.clear()

    def _enter(self, cell, args, kwargs):
        first = cell not in self.started
        self.started.add(cell)
        if not first or not self.forwards or cell not in self.last:
            return None
        hx = self.last[cell]
        if len(args) > 1:
            return (args[0], hx, *args[2:]), kwargs
        if args:
            return (args[0], hx), {k: v for k, v in kwargs.items() if k != "hx"}
        return args, {**kwargs, "hx": hx}

    def _leave(self, cell, args, output):
        self.last[cell] = output


def finish(builder: TraceBuilder, model: nn.Module, ids: torch.Tensor, logits: torch.Tensor, decode, edits: list,
           prompt_steps: int) -> None:
    """The trace fields of a generated run: the logits, the tokens, the ids and the edits."""
    builder.outputs = to_numpy(logits)
    labels: Any = [[label(decode, int(i)) for i in row] for row in ids.tolist()]
    builder.tokens = labels
    builder.meta.update(training=bool(model.training), token_ids=ids.tolist(), prompt_steps=prompt_steps)
    if edits:
        builder.meta["edits"] = describe(edits)


def build_trace(model: nn.Module, runs: list, ids: torch.Tensor, logits: torch.Tensor, decode, edits: list,
                prompt_steps: int) -> Trace:
    """The Trace of the whole run: each layer's calls joined into one run over every step."""
    builder = TraceBuilder(WHO, type(model).__name__, "generate")
    groups: dict = {}
    for run in runs:
        groups.setdefault((run.module_path, run.layer), []).append(run)
    with torch.no_grad():
        layers = []
        for calls in groups.values():
            layers += [layer_arrays(d, None) for d in joined(calls)]
    merge_calls(builder, layers)
    finish(builder, model, ids, logits, decode, edits, prompt_steps)
    return builder.build(batch=ids.shape[0])


def joined(calls: list) -> list:
    """The Directions of one layer over all its calls, run after run along time: the kernel's
    calls recomputed once as one run (a few matmuls over every step), our loop's concatenated."""
    first = calls[0]
    if len(calls) > 1 and not any(run.has_own_states() for run in calls):
        axis = 1 if first.module.batch_first else 0
        whole = LayerRun(first.module_path, first.module, first.layer, 0,
                         torch.cat([run.x for run in calls], axis), first.h0, first.c0, first.weights)
        whole.out = torch.cat([run.out for run in calls], axis)
        return whole.recomputed()
    parts = [run.recomputed() for run in calls]
    if len(parts) == 1:
        return parts[0]
    d0 = parts[0][0]
    x = torch.cat([p[0].x for p in parts], 0)
    h = torch.cat([p[0].h for p in parts], 0)
    lengths = torch.full_like(d0.lengths, h.shape[0])
    c = torch.cat([p[0].c for p in parts], 0) if d0.c is not None else None
    gates = {name: torch.cat([p[0].gates[name] for p in parts], 0) for name in d0.gates}
    return [Direction(first, False, lengths, x, h, d0.h0, gates, c, d0.c0)]


def label(decode, i: int) -> str:
    """Token ``i``'s label: ``decode`` a list or a function, else its id."""
    if decode is None:
        return str(i)
    if callable(decode):
        return str(decode(i))
    return str(decode[i]) if 0 <= i < len(decode) else str(i)
