"""Shared validation: every user-facing error of voxweight is raised from here.

Messages name the argument and read ``"<arg>: expected ..., got ..."``. Shape, dtype and device
checks only read metadata. Value checks (ranges, finiteness) read data; how they run is governed by
:func:`set_value_checks` so that they never force a host-device synchronisation on CUDA by default.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = [
    "get_value_checks",
    "set_value_checks",
    "value_checks",
]

_VALUE_CHECK_MODES = ("auto", "sync", "off")
_BARELY_SUPPORTED = (torch.uint16, torch.uint32, torch.uint64)
_value_check_mode = os.environ.get("VOXWEIGHT_VALUE_CHECKS", "auto")


def look_up_option(name: str, value: Any, options: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise with a "did you mean" hint."""
    if isinstance(value, str) and value in options:
        return value
    listed = ", ".join(repr(o) for o in options)
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value.lower(), options, n=1, cutoff=0.5)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    raise ValueError(f"{name}: expected one of {listed}, got {value!r}{hint}")


def set_value_checks(mode: str) -> None:
    """Choose how voxweight checks tensor values (ranges, finiteness).

    Shape, dtype and device checks always run: they read metadata only. Value checks read data:

    * ``"auto"`` (default): on CPU a bad value raises ``ValueError``; on CUDA the check is queued on
      the device with ``torch._assert_async`` so it costs no host-device synchronisation (a bad value
      then stops the process with a device-side assert).
    * ``"sync"``: always raise ``ValueError``, synchronising with the device (use while debugging).
    * ``"off"``: skip value checks, for the last few percent of speed.

    The environment variable ``VOXWEIGHT_VALUE_CHECKS`` sets the initial mode.

    Args:
        mode: one of ``"auto"``, ``"sync"``, ``"off"``.

    Raises:
        ValueError: for an unknown mode.

    Example:
        >>> import voxweight
        >>> voxweight.set_value_checks("off")
        >>> voxweight.get_value_checks()
        'off'
        >>> voxweight.set_value_checks("auto")
    """
    global _value_check_mode
    _value_check_mode = look_up_option("mode", mode, _VALUE_CHECK_MODES)


def get_value_checks() -> str:
    """Return the current value-check mode (see :func:`set_value_checks`)."""
    return look_up_option("VOXWEIGHT_VALUE_CHECKS", _value_check_mode, _VALUE_CHECK_MODES)


@contextlib.contextmanager
def value_checks(mode: str) -> Iterator[None]:
    """Context manager that sets the value-check mode and restores the previous one on exit.

    Example:
        >>> import torch, voxweight
        >>> with voxweight.value_checks("off"):
        ...     loss = voxweight.voxel_weighted_bce(torch.zeros(1, 1, 2), torch.ones(1, 1, 2))
    """
    previous = get_value_checks()
    set_value_checks(mode)
    try:
        yield
    finally:
        set_value_checks(previous)


def describe(x: Any) -> str:
    """Short description of a value for error messages: shape and dtype for arrays."""
    if isinstance(x, torch.Tensor | np.ndarray):
        kind = "tensor" if isinstance(x, torch.Tensor) else "array"
        return f"{kind} of shape {list(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, int | float | str | bool) else type(x).__name__


def check_tensor(name: str, x: Any) -> torch.Tensor:
    """Require a torch tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {describe(x)}")
    return x


def check_float_tensor(name: str, x: Any) -> torch.Tensor:
    """Require a real floating-point torch tensor."""
    check_tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def check_same_device(name: str, x: torch.Tensor, device: torch.device) -> None:
    """Require ``x`` to live on ``device``."""
    if x.device != device:
        raise ValueError(f"{name}: expected a tensor on {device} (where input is), got one on {x.device}")


def check_broadcastable_to(name: str, x: torch.Tensor, shape: Sequence[int], hint: str = "") -> None:
    """Require ``x`` to have ``len(shape)`` dims, each equal to ``shape``'s or 1 (no silent broadcast)."""
    ok = x.ndim == len(shape) and all(a in (1, b) for a, b in zip(x.shape, shape, strict=True))
    if not ok:
        raise ValueError(
            f"{name}: expected shape {list(shape)} or with some dims of size 1 (same number of dims), "
            f"got {list(x.shape)}{hint}"
        )


def check_range(name: str, x: torch.Tensor, low: float, high: float, what: str) -> None:
    """Value check: every element within ``[low, high]`` (NaN fails). Governed by the value-check mode.

    Inside :func:`deferred_value_checks` the check is recorded instead, for :func:`judge_range_checks`.
    """
    mode = get_value_checks()
    if mode == "off" or x.numel() == 0 or x.dtype == torch.bool:
        return
    check = RangeCheck(name, x.detach(), low, high, what)
    pending = _pending_checks.get()
    if pending is not None:
        pending.append(check)
        return
    judge_range_check(check, *_extremes(check.tensor))


class RangeCheck(NamedTuple):
    """A range check waiting for its tensor's extremes (see :func:`deferred_value_checks`)."""

    name: str
    tensor: torch.Tensor
    low: float
    high: float
    what: str


_pending_checks: contextvars.ContextVar[list[RangeCheck] | None] = contextvars.ContextVar("voxweight_pending",
                                                                                          default=None)


@contextlib.contextmanager
def deferred_value_checks(enabled: bool = True) -> Iterator[list[RangeCheck] | None]:
    """Record the range checks made inside the block instead of running them (``None`` if not ``enabled``).

    The fused loss computes the recorded tensors' extremes inside its compiled kernel, where they cost
    almost nothing next to separate passes, then calls :func:`judge_range_checks`.
    """
    if not enabled:
        yield None
        return
    token = _pending_checks.set([])
    try:
        yield _pending_checks.get()
    finally:
        _pending_checks.reset(token)


def range_extremes(tensors: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(min, max)`` of each tensor (traceable by ``torch.compile``)."""
    return [_extremes(t) for t in tensors]


def judge_range_checks(checks: list[RangeCheck], extremes: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Raise (or, on CUDA in ``"auto"`` mode, queue a device assert) for the first check out of range."""
    for check, (lo, hi) in zip(checks, extremes, strict=True):
        judge_range_check(check, lo, hi)


def judge_range_check(check: RangeCheck, lo: torch.Tensor, hi: torch.Tensor) -> None:
    ok = (lo >= check.low) & (hi <= check.high)
    if get_value_checks() == "auto" and check.tensor.device.type != "cpu":
        torch._assert_async(ok, f"{check.name}: expected {check.what}")
        return
    if not bool(ok):
        raise ValueError(f"{check.name}: expected {check.what}, got values in [{lo.item():g}, {hi.item():g}]")


def _extremes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum and maximum (NaN if any element is NaN), as 0-dim tensors on ``x``'s device.

    One ``aminmax`` pass on GPUs; on the CPU separate ``amin`` and ``amax`` passes, whose vectorised
    kernels together take about two thirds of ``aminmax``'s time.
    """
    if x.dtype in _BARELY_SUPPORTED:  # torch has few kernels for these: widen first
        x = x.to(torch.int64)
    if x.device.type == "cuda":
        return torch.aminmax(x)
    return x.amin(), x.amax()


def check_nonnegative(name: str, x: torch.Tensor) -> None:
    """Value check: finite and >= 0 (NaN and inf fail)."""
    check_range(name, x, 0.0, math.inf if not x.is_floating_point() else torch.finfo(x.dtype).max,
                "finite non-negative values")


def check_positive_number(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Require a finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a number, got {describe(value)}")
    value = float(value)
    bad = not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero)
    if bad:
        need = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{name}: expected {need}, got {value!r}")
    return value


def check_spacing(name: str, spacing: Any, ndim: int) -> tuple[float, ...]:
    """Normalise voxel spacing to ``ndim`` positive floats (a scalar means isotropic)."""
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, int | float | np.integer | np.floating) and not isinstance(spacing, bool):
        return (check_positive_number(name, spacing),) * ndim
    if isinstance(spacing, torch.Tensor | np.ndarray):
        spacing = [float(s) for s in np.asarray(spacing.tolist()).reshape(-1)]
    if not isinstance(spacing, Sequence) or isinstance(spacing, str):
        raise TypeError(f"{name}: expected a number or a sequence of {ndim} numbers, got {describe(spacing)}")
    if len(spacing) != ndim:
        raise ValueError(f"{name}: expected {ndim} values (one per spatial axis), got {len(spacing)}: "
                         f"{list(spacing)}")
    return tuple(check_positive_number(f"{name}[{i}]", s) for i, s in enumerate(spacing))


def check_all(name: str, ok: torch.Tensor, what: str, got: str = "other values") -> None:
    """Value check on a precomputed bool tensor ``ok`` (all True), governed by the value-check mode."""
    mode = get_value_checks()
    if mode == "off" or ok.numel() == 0:
        return
    ok = ok.all()
    if mode == "auto" and ok.device.type != "cpu":
        torch._assert_async(ok, f"{name}: expected {what}")
        return
    if not bool(ok):
        raise ValueError(f"{name}: expected {what}, got {got}")
