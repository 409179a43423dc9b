"""How rnnwidgets calls a model's forward: the one convention every entry point follows.

    rw.trace(model, inputs, hidden=None, args=(), kwargs=None)
    # rnnwidgets calls model(inputs, hidden, *args, **kwargs), bound to forward's parameters by name

- ``inputs``: the sequence. It goes to the first parameter of ``forward`` that ``kwargs`` does
  not name, so ``forward(category, input, hidden)`` takes ``kwargs={"category": c}``.
- ``hidden``: the next such parameter. Left out, a parameter there that needs a value and reads
  as a state (named ``hidden``, ``hx``, ``state``, ``h_state``...) gets the model's ``init_hidden(batch)`` /
  ``initHidden()``, else zeros (None for an nn.LSTM/GRU/RNN, which starts from zeros).
- ``args``: more positional arguments after those; ``kwargs``: any argument by name.
- A tuple or dict as ``inputs`` (a DataLoader's batch; ``unpack``): a dict is matched to
  forward's parameters by name, a tuple's items after the first fill the parameters forward
  needs after its input (not the state), so ``(ids, lengths)`` reaches ``forward(ids, lengths)``;
  what is left (targets, labels) is not passed.

``rw.trace``, ``rw.explore``, ``rw.gradient_flow``, ``rw.TrainingMonitor(probe=)`` and
``rw.trace_dataset`` take these keywords; ``rw.recording`` reads the model's own calls the same way.
When a parameter is left without a value, the error names it and shows the call to write.

``unwrap`` also lives here: a model wrapped by ``torch.compile`` or ``nn.DataParallel`` is traced
as the module it wraps, so its layers read as the user's module paths.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import NamedTuple, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

# Parameter names that read as a recurrent state passed in.
HIDDEN_NAMES = frozenset({"hidden", "hx", "h", "h0", "hc", "state", "states", "carry", "hidden_state",
                          "prev_hidden", "prev_state", "h_prev", "initial_state", "init_state"})
# Parameter names that read as an LSTM's cell state passed beside the hidden state.
CELL_NAMES = frozenset({"cell", "c", "c0", "cx", "cell_state", "c_prev", "prev_cell"})
# Parameter names that read as the sequence itself (for the call shown in an error).
INPUT_NAMES = frozenset({"input", "inputs", "x", "xs", "ids", "input_ids", "tokens", "src", "seq", "sequence",
                         "text", "line", "data", "input_tensor", "encoder_outputs"})
_MISSING = object()


class OutOfVocabulary(ValueError, IndexError):
    """Ids the model's embedding does not hold: a ValueError that says so, still the IndexError torch raised."""


def out_of_vocabulary(who: str, model: nn.Module, values) -> Optional[ValueError]:
    """Where the model's embedding refused ids it does not hold (an IndexError, "index out of range in
    self"): one sentence naming its size and the id, from the integer tensors among ``values`` (the
    inputs, the arguments); None where no embedding is too small for them (the error is the model's own)."""
    ids = [v for v in values if isinstance(v, torch.Tensor) and v.numel() and not v.is_floating_point()
           and v.dtype != torch.bool]
    if not ids:
        return None
    low, top = min(int(v.min()) for v in ids), max(int(v.max()) for v in ids)
    small = [(path, m) for path, m in model.named_modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
             and (m.num_embeddings <= top or low < 0)]
    if not small:
        return None
    path, embedding = small[0]
    return OutOfVocabulary(f"{who}: expected token ids from 0 to {embedding.num_embeddings - 1} ("
                      f"{path or 'the model'} is nn.{type(embedding).__name__}({embedding.num_embeddings}, ...)), "
                      f"got {low if low < 0 else top}")


@contextmanager
def ids_explained(who: str, model: nn.Module, values):
    """Run the block; where it raises torch's IndexError for ids the model's embedding does not
    hold, raise ``out_of_vocabulary``'s sentence for ``values`` instead (one already said passes as it is)."""
    try:
        yield
    except OutOfVocabulary:
        raise
    except IndexError as e:
        clear = out_of_vocabulary(who, model, values)
        if clear is None:
            raise
        raise clear from e


def unwrap(model):
    """The module a ``torch.compile`` (``_orig_mod``) or ``nn.DataParallel`` / DDP (``module``)
    wrapper holds, however deep the wrapping; any other model as it is."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while True:
        if isinstance(model, (DataParallel, DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module) and type(model).__name__ == "OptimizedModule":
            model = model._orig_mod
        else:
            return model


def main_output(output):
    """The model's main output, which ``tr.outputs``, ``loss="last"`` and ``rw.generate`` read: a
    tuple's or list's first item; a dict's (a Hugging Face ``ModelOutput``'s) "logits", else its
    first value; anything else as it is."""
    if isinstance(output, dict) and output:
        return output["logits"] if "logits" in output else next(iter(output.values()))
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    return output


def looks_like_hidden(name: str) -> bool:
    """``hidden``, ``hx``... and any ``<something>_state(s)`` (MorvanZhou's ``forward(x, h_state)``)."""
    return name in HIDDEN_NAMES or "hidden" in name or name.endswith(("_state", "_states"))


def makes_hidden(model: nn.Module) -> bool:
    return any(callable(getattr(model, attr, None)) for attr in ("init_hidden", "initHidden"))


class Bound(NamedTuple):
    """One call of the forward: positional and keyword arguments, and where input and hidden sit."""
    positional: list
    keywords: dict
    input_at: int
    hidden_at: Optional[int]

    def at(self, x, hidden=_MISSING):
        """(args, kwargs) with the input (and hidden, when it has a slot) replaced."""
        positional = list(self.positional)
        positional[self.input_at] = x
        if hidden is not _MISSING and self.hidden_at is not None:
            positional[self.hidden_at] = hidden
        return tuple(positional), dict(self.keywords)


class ModelCall:
    """How to call ``model``'s forward with an input and what else it needs (module doc)."""

    def __init__(self, model: nn.Module, args=(), kwargs=None, who: str = "rw.trace"):
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"{who}: args: expected a tuple of the forward's further positional arguments, "
                            f"got {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise TypeError(f"{who}: kwargs: expected a dict of the forward's arguments by name, "
                            f"got {type(kwargs).__name__}")
        self.model, self.who = model, who
        self.args, self.kwargs = tuple(args), dict(kwargs or {})
        try:
            self.signature: Optional[inspect.Signature] = inspect.signature(model.forward)
        except (TypeError, ValueError):
            self.signature = None
        params = list(self.signature.parameters.values()) if self.signature is not None else []
        self.positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
        self.varkw = any(p.kind == p.VAR_KEYWORD for p in params)
        self.keyword_only = [p for p in params if p.kind == p.KEYWORD_ONLY]
        unknown = [k for k in self.kwargs if not self.varkw and k not in {p.name for p in params}]
        if unknown and self.signature is not None:
            raise TypeError(f"{who}: kwargs names {unknown}, which {self.forward_text()} does not take")
        # the parameters inputs, hidden and args fill, in order
        self.free = [p for p in self.positional if p.name not in self.kwargs]

    # ---- what the forward looks like ----------------------------------------------------------
    def forward_text(self) -> str:
        sig = "" if self.signature is None else str(self.signature)
        return f"{type(self.model).__name__}.forward{sig or '(...)'}"

    def hidden_param(self) -> Optional[inspect.Parameter]:
        """The parameter ``hidden`` goes to: the free one after the input."""
        return self.free[1] if len(self.free) > 1 else None

    def needs_state(self) -> bool:
        """Whether forward needs a state after its input that rnnwidgets makes when not given."""
        p = self.hidden_param()
        return p is not None and p.default is p.empty and looks_like_hidden(p.name)

    def is_step_module(self) -> bool:
        """forward(input, hidden) once the named arguments are set aside: exactly two required
        positional parameters left, the second a state."""
        required = [p for p in self.free if p.default is p.empty]
        return len(required) == 2 and required == self.free[:2] and not self.args

    def extra_params(self) -> list:
        """The parameters a tuple batch's further items fill: after the input, the ones forward
        needs (no default) that are not a state it can be given by default."""
        rest = self.free[1:]
        if rest and self.needs_state():
            rest = rest[1:]
        return [p for p in rest if p.default is p.empty]

    # ---- binding ----------------------------------------------------------------------------
    def bind(self, x, hidden=_MISSING) -> Bound:
        """The call's arguments; ``hidden`` _MISSING leaves its parameter to its default."""
        queue = [("input", x)] + ([("hidden", hidden)] if hidden is not _MISSING else []) + \
            [("arg", a) for a in self.args]
        positional, keywords = [], dict(self.kwargs)
        slots: dict = {}
        if self.signature is None:
            positional = [v for _, v in queue]
            slots = {"input": 0, "hidden": 1 if hidden is not _MISSING else None}
            return Bound(positional, keywords, slots["input"], slots["hidden"])
        for p in self.positional:
            if not queue:
                break
            if p.name in keywords:
                positional.append(keywords.pop(p.name))
                continue
            what, value = queue.pop(0)
            slots.setdefault(what, len(positional))
            positional.append(value)
        if queue and not self.varargs:
            raise TypeError(f"{self.who}: {self.forward_text()} takes {len(self.positional)} positional arguments; "
                            f"rnnwidgets would pass {len(positional) + len(queue)} ({self.shown(hidden)})")
        for what, value in queue:
            slots.setdefault(what, len(positional))
            positional.append(value)
        self.check_complete(len(positional), keywords, hidden)
        return Bound(positional, keywords, slots["input"], slots.get("hidden"))

    def check_complete(self, filled: int, keywords: dict, hidden) -> None:
        given = {p.name for p in self.positional[:filled]} | set(keywords)
        missing = [p.name for p in (*self.positional, *self.keyword_only)
                   if p.default is p.empty and p.name not in given]
        if missing:
            raise TypeError(f"{self.who}: {self.forward_text()} needs {', '.join(map(repr, missing))}, which "
                            f"rnnwidgets cannot make; it would call {self.shown(hidden)}. Write: "
                            f"{self.suggestion(missing)}{self.split_state_note()}")

    def split_state_note(self) -> str:
        """For forward(input, hidden, cell): kwargs= suits a model run once on the whole sequence, but a
        step module's cell given so would be the same at every step (bentrevett's decoder returns
        (prediction, hidden, cell) and is called a token at a time)."""
        split = [p.name for p in self.positional[1:3]]
        if len(split) < 2 or not looks_like_hidden(split[0]) or split[1] not in CELL_NAMES:
            return ""
        return (f"; a step module taking its state as ({split[0]}, {split[1]}) is not carried step to step so: "
                f"run your own loop over it inside `with rw.recording(model) as rec:` (then rec.trace)")

    def shown(self, hidden=_MISSING) -> str:
        """The call as rnnwidgets would make it, in words."""
        values = ["inputs", *(["hidden"] if hidden is not _MISSING else [])]
        values += [f"args[{i}]" for i in range(len(self.args))]
        names = [p.name for p in self.free][:len(values)]
        shown = [f"{n}={v}" for n, v in zip(names, values)] + values[len(names):]
        shown += [f"{k}=kwargs[{k!r}]" for k in self.kwargs]
        return f"model({', '.join(shown)})"

    def suggestion(self, missing: list) -> str:
        """The call to write: the sequence as inputs, the state as hidden=, the rest by name."""
        required = [p.name for p in self.positional if p.default is p.empty]
        input_name = next((n for n in required if n in INPUT_NAMES), required[0] if required else "inputs")
        state = next((n for n in required if looks_like_hidden(n) and n != input_name), None)
        named = [n for n in dict.fromkeys([*self.kwargs, *required, *missing]) if n not in (input_name, state)]
        parts = [f"rw.trace(model, {input_name}"]
        if state is not None and state in missing and not makes_hidden(self.model):
            parts.append(f"hidden={state}")
        if named:
            parts.append("kwargs={" + ", ".join(f"{n!r}: {n}" for n in named) + "}")
        return ", ".join(parts) + ")  (rw.explore, rw.gradient_flow, rw.TrainingMonitor and rw.trace_dataset take " \
                                  "the same keywords)"

    # ---- the whole-model run ------------------------------------------------------------------
    def whole(self, inputs, hidden, fused: bool) -> Bound:
        """The arguments of one run of the whole model on ``inputs``: ``hidden`` when given, else
        the model's own initial state where forward needs one (None, zeros, for a fused module)."""
        if hidden is None:
            if not self.needs_state():
                return self.bind(inputs)
            hidden = initial_state(self.model, inputs, fused)
        return self.bind(inputs, hidden)

    @contextmanager
    def calling(self, bound: Bound):
        """While active, ``model(x)`` (or ``model(x, hidden)`` with the hidden it yields, None if
        none) makes ``bound``'s whole call: for code that calls the model with its input alone
        (the fused path). Plain ``(input)`` and ``(input, hidden)`` calls are left as they are."""
        plain = (bound.input_at == 0 and not bound.keywords
                 and (len(bound.positional) == 1 or (len(bound.positional) == 2 and bound.positional[1] is not None)))
        if plain or isinstance(self.model, nn.RNNBase):
            yield bound.positional[1] if len(bound.positional) > 1 else None
            return
        model = self.model
        own = model.__dict__.get("forward")
        forward = model.forward

        def call_forward(x):
            args, kwargs = bound.at(x)
            return forward(*args, **kwargs)

        model.forward = call_forward
        try:
            yield None
        finally:
            if own is None:
                del model.forward
            else:
                model.forward = own


def initial_state(model: nn.Module, inputs, fused: bool):
    """The model's own initial state for ``inputs`` (init_hidden(batch)/initHidden()), or None
    for a fused module's zeros; zeros of ``hidden_size`` for a step module."""
    if makes_hidden(model) or not fused:
        device, dtype = device_and_dtype(model)
        return default_hidden(model, batch_of(model, inputs), device, dtype)
    return None


def batch_of(model: nn.Module, inputs) -> int:
    """The batch size of ``inputs`` as the model's first fused module reads it ((time, batch) unless
    batch_first), or its first dimension."""
    if isinstance(inputs, PackedSequence):
        return int(inputs.batch_sizes[0])
    if not isinstance(inputs, torch.Tensor) or inputs.dim() == 0:
        return 1
    fused = next((m for m in model.modules() if isinstance(m, nn.RNNBase)), None)
    if fused is None:
        return inputs.shape[0] if inputs.dim() > 1 else 1
    if inputs.dim() == 1 or (inputs.dim() == 2 and inputs.is_floating_point()):
        return 1                                       # one unbatched sequence
    return inputs.shape[0] if fused.batch_first else inputs.shape[1]


def default_hidden(model: nn.Module, batch: int, device, dtype):
    """The module's own init_hidden/initHidden (given the batch size if it takes one; a batch-1
    state is repeated over the batch), else zeros of (batch, hidden_size)."""
    for attr in ("init_hidden", "initHidden"):
        make = getattr(model, attr, None)
        if callable(make):
            return _fit_batch(_to(make(batch) if _takes_an_argument(make) else make(), device, dtype), batch)
    size = getattr(model, "hidden_size", None)
    if isinstance(size, int):
        return torch.zeros(batch, size, device=device, dtype=dtype)
    raise ValueError(f"{type(model).__name__}: no initial hidden state — pass hidden=..., or give the module an "
                     "init_hidden()/initHidden() method or an integer hidden_size attribute")


def _fit_batch(hidden, batch: int):
    if not isinstance(hidden, torch.Tensor):
        return type(hidden)(_fit_batch(h, batch) for h in hidden)
    if hidden.dim() == 2 and hidden.shape[0] == 1:
        return hidden.repeat(batch, 1)
    if hidden.dim() == 3 and hidden.shape[1] == 1:    # (layers, batch, units)
        return hidden.repeat(1, batch, 1)
    return hidden


def _takes_an_argument(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _to(hidden, device, dtype):
    if isinstance(hidden, torch.Tensor):
        return hidden.to(device, dtype if hidden.is_floating_point() else hidden.dtype)
    return type(hidden)(_to(h, device, dtype) for h in hidden)


def device_and_dtype(model):
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


# ---- batches ----------------------------------------------------------------------------------
def unpack(call: ModelCall, batch, strict: bool = False) -> tuple:
    """(inputs, kwargs) from a batch: a dict matched to forward's parameters by name, a
    tuple's items after the first filling ``call.extra_params()`` (module doc); anything else is
    the inputs. ``strict`` (rw.trace): a tuple is unpacked only when forward needs its items;
    otherwise (a list of per-step tensors) it stays the inputs."""
    if isinstance(batch, dict):
        names = [p.name for p in call.positional]
        first = next((n for n in names if n in batch and n not in call.kwargs), None)
        if first is None:
            first = next((k for k in ("input", "inputs", "input_ids", "ids", "x") if k in batch), None)
        if first is None:
            raise TypeError(f"{call.who}: a batch dict with keys {sorted(map(str, batch))} has none of the parameters "
                            f"of {call.forward_text()}; expected its input under the name forward gives it")
        taken = {p.name for p in call.positional} | {p.name for p in call.keyword_only}
        kwargs = {k: v for k, v in batch.items() if k != first and (k in taken or call.varkw)}
        return batch[first], kwargs
    if isinstance(batch, (tuple, list)) and not isinstance(batch, PackedSequence):
        extra = call.extra_params()
        if strict and not (extra and len(batch) == len(extra) + 1):
            return batch, {}
        if not batch:
            raise ValueError(f"{call.who}: an empty batch; expected the inputs first")
        return batch[0], {p.name: v for p, v in zip(extra, batch[1:])}
    return batch, {}


def refuse_scripted(who: str, model, children: bool = True) -> None:
    """TorchScript modules run no Python hooks: one sentence for the model, or (``children``) a module
    in it, that is one, telling torch.jit.script(model) from a class written on jit.ScriptModule
    (pytorch's benchmarks/fastrnns/custom_lstms.py), which has no nn.Module to pass instead."""
    def fix(m) -> str:
        if isinstance(m, torch.jit.RecursiveScriptModule):
            return "pass the nn.Module it was scripted from"
        return (f"{type(m).__name__} is written on torch.jit.ScriptModule, which runs no Python hooks: write it on "
                "nn.Module, its @jit.script_method forward a plain forward")
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(f"{who}: expected a torch.nn.Module as the model, got a torch.jit.script-ed module "
                        f"({fix(model)})")
    scripted = [(path, m) for path, m in model.named_modules() if isinstance(m, torch.jit.ScriptModule)] \
        if children and isinstance(model, nn.Module) else []
    if scripted:
        path, m = scripted[0]
        raise TypeError(f"{who}: expected plain torch.nn.Modules, but {path!r} is a torch.jit.script-ed module; "
                        + ("pass the model built from nn.Modules it was scripted from"
                           if isinstance(m, torch.jit.RecursiveScriptModule) else fix(m)))
