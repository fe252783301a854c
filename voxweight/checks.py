"""Value checks: whether and how voxweight reads tensor *values* (ranges, finiteness) to validate them.

Argument checks that read only metadata (types, shapes, devices) always run; they live in
``voxweight._validate``. The checks here read data, so :func:`set_value_checks` decides how they run,
and by default they never force a host-device synchronisation on CUDA.

Module state, on purpose: the value-check mode (``_value_check_mode``, set by :func:`set_value_checks`,
initially from ``VOXWEIGHT_VALUE_CHECKS``) and the checks deferred by :func:`deferred_value_checks`
(a ``contextvars`` variable, so threads and tasks each see their own).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch

from voxweight._validate import look_up_option

__all__ = [
    "RangeCheck",
    "check_all",
    "check_nonnegative",
    "check_range",
    "checked_once",
    "deferred_value_checks",
    "get_value_checks",
    "judge_range_checks",
    "range_extremes",
    "set_value_checks",
    "value_checks",
]

_VALUE_CHECK_MODES = ("auto", "sync", "off")
_BARELY_SUPPORTED = (torch.uint16, torch.uint32, torch.uint64)
_value_check_mode = os.environ.get("VOXWEIGHT_VALUE_CHECKS", "auto")


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
    """Return the current value-check mode (see :func:`set_value_checks`).

    Example:
        >>> get_value_checks() in ("auto", "sync", "off")
        True
    """
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


def check_range(name: str, x: torch.Tensor, low: float, high: float, what: str) -> None:
    """Value check: every element within ``[low, high]`` (NaN fails). Governed by the value-check mode.

    Inside :func:`deferred_value_checks` the check is recorded instead, for :func:`judge_range_checks`.

    Example:
        >>> check_range("target", torch.tensor([0.0, 1.5]), 0.0, 1.0, "values in [0, 1]")
        Traceback (most recent call last):
        ...
        ValueError: target: expected values in [0, 1], got values in [0, 1.5]
    """
    mode = get_value_checks()
    if mode == "off" or x.numel() == 0 or x.dtype == torch.bool or _seen_before(x, low, high):
        return
    check = RangeCheck(name, x.detach(), low, high, what)
    pending = _pending_checks.get()
    if pending is not None:
        pending.append(check)
        return
    judge_range_check(check, *_extremes(check.tensor))


@contextlib.contextmanager
def checked_once() -> Iterator[None]:
    """Inside the block, a range check of a tensor already checked with the same bounds is skipped.

    For losses made of terms that each validate the same target and weight map (a compound loss): the
    values are read once. A tensor modified in place since (its version counter moved) is checked again.

    Example:
        >>> t = torch.tensor([0.0, 1.0])
        >>> with checked_once():
        ...     check_range("target", t, 0.0, 1.0, "values in [0, 1]")  # reads t
        ...     check_range("target", t, 0.0, 1.0, "values in [0, 1]")  # skipped
    """
    token = _checked.set({})
    try:
        yield
    finally:
        _checked.reset(token)


def _seen_before(x: torch.Tensor, low: float, high: float) -> bool:
    """Whether ``x`` (same storage, view, version) was range-checked with these bounds in :func:`checked_once`."""
    seen = _checked.get()
    if seen is None or x.device.type == "meta":
        return False
    key = (x.data_ptr(), tuple(x.shape), x.stride(), x.dtype, x._version, low, high)
    if key in seen:
        return True
    seen[key] = x  # held until the block ends: its memory cannot be reused by another tensor meanwhile
    return False


_checked: contextvars.ContextVar[dict[tuple, torch.Tensor] | None] = contextvars.ContextVar("voxweight_checked",
                                                                                           default=None)


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
    """Judge one range check from its tensor's extremes (see :func:`judge_range_checks`)."""
    _judge((lo >= check.low) & (hi <= check.high), check.name, check.what,
           lambda: f"values in [{lo.item():g}, {hi.item():g}]")


def _judge(ok: torch.Tensor, name: str, what: str, got: Callable[[], str]) -> None:
    """Queue a device-side assert (``"auto"`` mode off the CPU: no synchronisation) or raise ``ValueError``."""
    if get_value_checks() == "auto" and ok.device.type != "cpu":
        torch._assert_async(ok, f"{name}: expected {what}")
        return
    if not bool(ok):
        raise ValueError(f"{name}: expected {what}, got {got()}")


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
    """Value check: finite and >= 0 (NaN and inf fail).

    Example:
        >>> check_nonnegative("weight", torch.tensor([1.0, float("inf")]))
        Traceback (most recent call last):
        ...
        ValueError: weight: expected finite non-negative values, got values in [1, inf]
    """
    check_range(name, x, 0.0, math.inf if not x.is_floating_point() else torch.finfo(x.dtype).max,
                "finite non-negative values")


def check_all(name: str, ok: torch.Tensor, what: str, got: str = "other values") -> None:
    """Value check on a precomputed bool tensor ``ok`` (all True), governed by the value-check mode.

    Example:
        >>> labels = torch.tensor([0, 1, 3])
        >>> check_all("target", labels < 3, "class indices in [0, 2]", "indices outside that range")
        Traceback (most recent call last):
        ...
        ValueError: target: expected class indices in [0, 2], got indices outside that range
    """
    if get_value_checks() == "off" or ok.numel() == 0:
        return
    _judge(ok.all(), name, what, lambda: got)
