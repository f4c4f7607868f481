"""What a ``%%track`` cell records of a PyTorch training loop, with no logging code (issue #20).

Everything is read from the namespace after the cell; nothing is wrapped or hooked while the loop
runs, so the loop costs what it costs untracked (benchmarks/bench_track.py, case 6). torch is
never imported here: a cell that made a module has imported it already (``sys.modules``).

Modules
    An ``nn.Module`` with parameters or buffers that the cell bound to a name or called a method
    of (``model = MLP()``, ``model.train()``), or whose parameters an optimizer of the cell holds
    (a module made in an earlier cell and trained in this one). A module that is part of another
    captured one (``layer`` in ``model = nn.Sequential(layer, ...)``) is not captured twice, and
    a module without state (``loss_fn = nn.MSELoss()``) not at all. Each is logged as a model (its
    ``state_dict``: :mod:`nbmlops.capture.model_formats`), with its parameter count as the param
    ``<name>.n_parameters`` and its ``repr`` (the layers, as PyTorch prints them) as the artifact
    ``<name>.architecture.txt``.

Optimizers
    ``torch.optim.Optimizer`` objects the cell bound or used: ``<Class>.<key>`` for ``lr``,
    ``momentum``, ``weight_decay`` and ``betas``, from ``defaults`` (the constructor's values: a
    scheduler changes ``param_groups``, not these).

Step metrics
    A list the cell built in place (``losses.append(loss.item())``, ``extend``, ``+=``, item
    assignment) whose items are all numbers is a curve: metric ``losses`` with steps 0..n-1. So is
    a dict filled per epoch, ``{epoch: value}`` (its int keys are the steps), and each list of a
    dict of lists (``history["val_acc"].append(...)`` -> ``history.val_acc``). A list a function
    returned (``preds = model(x).tolist()``) is data, not a curve, and is not logged. Items may be
    Python or NumPy numbers or 0-d tensors (``losses.append(loss.detach())``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from nbmlops._jsonable import jsonable

__all__ = [
    "OPTIMIZER_KEYS",
    "architecture",
    "captured_modules",
    "is_module",
    "is_optimizer",
    "n_parameters",
    "optimizer_params",
    "series",
]

OPTIMIZER_KEYS = ("lr", "momentum", "weight_decay", "betas")


def _torch() -> Any:
    return sys.modules.get("torch")


def is_module(obj: object) -> bool:
    """An ``nn.Module`` (False, at no cost, while torch is not imported)."""
    torch = _torch()
    return torch is not None and isinstance(obj, torch.nn.Module)


def is_optimizer(obj: object) -> bool:
    """A ``torch.optim.Optimizer``."""
    torch = _torch()
    return torch is not None and isinstance(obj, torch.optim.Optimizer)


def optimizer_params(optimizer: Any) -> dict[str, object]:
    """``<Class>.<key>`` for each of :data:`OPTIMIZER_KEYS` the optimizer's constructor took."""
    name = type(optimizer).__name__
    out: dict[str, object] = {}
    for key in OPTIMIZER_KEYS:
        if key in optimizer.defaults:
            value = optimizer.defaults[key]
            if is_tensor(value):  # lr may be a tensor (capturable optimizers)
                value = value.item()
            out[f"{name}.{key}"] = jsonable(value)
    return out


def is_tensor(obj: object) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def captured_modules(
    candidates: Mapping[str, object], optimizers: Iterable[Any], namespace: Mapping[str, object]
) -> list[tuple[str, Any]]:
    """``(name, module)`` for each module to log (module docstring): those in ``candidates``
    (bound or used by the cell) and those in ``namespace`` whose parameters an optimizer of the
    cell holds; without modules nested in another one, or without state."""
    trained = {id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]}
    found: dict[int, tuple[str, Any]] = {}
    for name, obj in candidates.items():
        if is_module(obj):
            found.setdefault(id(obj), (name, obj))
    if trained:
        for name, value in namespace.items():
            module: Any = value
            if (
                id(module) not in found
                and not name.startswith("_")
                and is_module(module)
                and any(id(p) in trained for p in module.parameters())
            ):
                found[id(module)] = (name, module)
    nested = {
        id(sub) for _, module in found.values() for sub in module.modules() if sub is not module
    }
    return [
        (name, module)
        for key, (name, module) in found.items()
        if key not in nested and _has_state(module)
    ]


def _has_state(module: Any) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def n_parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def architecture(module: Any) -> bytes:
    """What PyTorch prints for the module (its layers and their shapes), with the class path and
    the parameter count."""
    cls = type(module)
    header = f"# {cls.__module__}.{cls.__qualname__}: {n_parameters(module):,} parameters\n"
    return (header + repr(module) + "\n").encode()


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    number: Any = value
    if type(value).__module__ == "numpy" and getattr(number, "ndim", 1) == 0:
        return float(number) if number.dtype.kind in "iuf" else None
    if is_tensor(value):
        tensor: Any = value
        if tensor.ndim == 0 and not tensor.dtype.is_complex and tensor.dtype != _torch().bool:
            return float(tensor.item())
    return None


def _curve(values: Iterable[object]) -> list[float] | None:
    out: list[float] = []
    for value in values:
        number = _number(value)
        if number is None:
            return None
        out.append(number)
    return out or None


def series(name: str, obj: object) -> list[tuple[str, list[tuple[int, float]]]]:
    """The curves ``obj`` holds (module docstring): ``(metric, [(step, value), ...])``, or []."""
    if isinstance(obj, list):
        curve = _curve(obj)
        return [] if curve is None else [(name, list(enumerate(curve)))]
    if not isinstance(obj, dict) or not obj:
        return []
    if all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in obj):
        curve = _curve(obj.values())
        return [] if curve is None else [(name, sorted(zip(obj, curve, strict=True)))]
    out: list[tuple[str, list[tuple[int, float]]]] = []
    for key, value in obj.items():
        if isinstance(key, str) and isinstance(value, list):
            curve = _curve(value)
            if curve is not None:
                out.append((f"{name}.{key}", list(enumerate(curve))))
    return out
