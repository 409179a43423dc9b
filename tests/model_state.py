"""What "the model is left exactly as found" means, for every test that traces a model:
parameters bit for bit, each .grad (the same tensor, unchanged, or still None), requires_grad,
training flags, instance forwards, hooks (module and global), the grad mode, every buffer
and plain tensor attribute (BatchNorm statistics, spectral_norm's vectors and weight) bit for bit,
each the same tensor object, and every attribute holding None or a tuple / list of tensors (a
state kept as ``self.hidden``) the same object."""
import torch
from torch import nn

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
              "_state_dict_hooks", "_load_state_dict_pre_hooks")


def snapshot(model: nn.Module) -> dict:
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {n: (None if p.grad is None else (p.grad, p.grad.detach().clone()))
                  for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": {n: m.training for n, m in model.named_modules()},
        "forward": {n: m.__dict__.get("forward") for n, m in model.named_modules()},
        "hooks": {n: {d: list(getattr(m, d, {}).items()) for d in HOOK_DICTS} for n, m in model.named_modules()},
        "global_hooks": [len(getattr(nn.modules.module, d)) for d in dir(nn.modules.module) if d.startswith("_global_")
                         and isinstance(getattr(nn.modules.module, d), dict)],
        "grad_enabled": torch.is_grad_enabled(),
        "states": {(n, k): v for n, m in model.named_modules() for k, v in vars(m).items()
                   if v is None or (isinstance(v, (tuple, list)) and any(isinstance(t, torch.Tensor) for t in v))},
        "tensors": {(n, k): (t, t.detach().clone()) for n, m in model.named_modules() for k, t in
                    [*m._buffers.items(), *((k, v) for k, v in vars(m).items()
                                            if isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter))]
                    if t is not None},
    }


def assert_untouched(model: nn.Module, before: dict):
    after = snapshot(model)
    for name, value in before["params"].items():
        p = after["params"][name]
        assert p.dtype == value.dtype and torch.equal(p.view(torch.uint8), value.view(torch.uint8)), name
    for name, grad in before["grads"].items():
        p = dict(model.named_parameters())[name]
        if grad is None:
            assert p.grad is None, f"{name}.grad appeared"
        else:
            assert p.grad is grad[0] and torch.equal(p.grad, grad[1]), f"{name}.grad changed"
    now = after["tensors"]
    assert set(now) == set(before["tensors"]), "buffers or tensor attributes appeared or went"
    for key, (tensor, value) in before["tensors"].items():
        assert now[key][0] is tensor, f"{key} was replaced"
        bits = [t.reshape(-1).view(torch.uint8) for t in (tensor, value)]
        assert tensor.dtype == value.dtype and torch.equal(*bits), key
    states = after["states"]
    assert set(states) == set(before["states"]), "state attributes (None, or tuples of tensors) appeared or went"
    for key, value in before["states"].items():
        assert states[key] is value, f"{key} was reassigned"
    for key in ("requires_grad", "training", "forward", "hooks", "global_hooks", "grad_enabled"):
        assert after[key] == before[key], key
