"""``fused=True``: the loss, its gradient and the value checks' extremes in compiled kernels.

A scalar loss's gradient is known in the forward pass up to the ``grad_output`` that backward brings.
So where ``input`` is the only tensor that needs a gradient, one compiled kernel computes the loss *and*
its gradient (``torch.func.grad_and_value``), sharing the exponentials between them, and backward only
scales that gradient in place: one pass over the voxels instead of reading ``x``, ``t`` and ``w`` again
to recompute ``sigmoid(x)``. The gradient buffer is the one backward would allocate anyway, so the peak
memory stays one voxel-sized tensor. Elsewhere (``reduction="none"``, a target that needs a gradient,
no gradient wanted) ``torch.compile`` of the loss lets AOTAutograd fuse forward and backward separately.

The tensors of deferred value checks (:func:`voxweight.checks.deferred_value_checks`) have their
extremes computed in the same kernel, which reads them anyway; they are judged when it returns. Where
compiling is unavailable the eager path runs, after one warning (an input that the eager path rejects
as well gets the eager path's error, and compiling stays on). Nothing here validates.

Module state, on purpose: the compile cache (the two compiled functions, built on first use and kept for
the process) and whether compiling failed (so that it warns once and is not retried on every call).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from voxweight.checks import RangeCheck, judge_range_checks, range_extremes
from voxweight.losses.eager import bce_denominator, compute_bce
from voxweight.losses.finite import LOW_PRECISION
from voxweight.losses.sync import global_mean

__all__ = ["compile_failed", "fused_bce"]

Extremes = list[tuple[torch.Tensor, torch.Tensor]]

_compiled = None  # torch.compile(_loss_and_extremes)
_compiled_grad = None  # torch.compile(grad_and_value(_loss_and_extremes))
_compile_failed = False  # no compiled path at all: eager
_grad_failed = False  # the gradient kernel could not be built: the compiled loss only


def fused_bce(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None, pos: torch.Tensor | None,
              mask: torch.Tensor | None, logits: bool, reduction: str,
              balance: tuple[str, float | None] | None = None, focal_gamma: float = 0.0,
              checks: list[RangeCheck] | None = None, sync: bool = False) -> torch.Tensor:
    """:func:`voxweight.losses.eager.compute_bce` in compiled kernels (see the module docstring).

    ``checks`` are judged once the kernel returns (the loss is then discarded if one fails); the eager
    fallback judges them first, as the eager path does. ``sync`` (a process group is in use): the kernels
    compute this rank's loss as without it, which then becomes its share of the global loss: ``"sum"`` is
    all-reduced; a mean ``m`` with denominator ``d`` (:func:`~voxweight.losses.eager.bce_denominator`, one
    more pass for ``"weighted_mean"``) gives ``sum_r m_r d_r / sum_r d_r``, gradients included.
    """
    if sync and reduction != "none":
        loss = fused_bce(input, target, w, pos, mask, logits, reduction, balance, focal_gamma, checks)
        local = loss.float() if loss.dtype in LOW_PRECISION else loss
        if reduction == "sum":  # half types come back in float32, for the caller's saturating cast
            return global_mean(local, None)
        count = bce_denominator(target, w, pos, mask, reduction, balance, sync=True)
        return global_mean(local * count, count)
    checks = checks or []
    args = (input, target, w, pos, mask, logits, reduction, balance, focal_gamma, [c.tensor for c in checks])
    result, grad_error, compile_error = None, None, None
    if _gradient_kernel_applies(input, target, w, pos, reduction):
        result, grad_error = _with_gradient(args)
    if result is None:
        result, compile_error = _compiled_loss(args)
    if result is None:  # eagerly: judge first, as the eager path does (torch's kernels reject some bad values)
        judge_range_checks(checks, range_extremes(args[-1]))
        loss = compute_bce(*args[:-1])  # an input that fails here too raises its own error, as eagerly
        _give_up(grad_error, compile_error)
        return loss
    _give_up(grad_error, None)
    loss, extremes = result
    judge_range_checks(checks, extremes)
    return loss


def compile_failed() -> bool:
    """Whether ``fused=True`` has fallen back to the eager path for good in this process (compiling failed).

    Example:
        >>> isinstance(compile_failed(), bool)
        True
    """
    return _compile_failed


def _give_up(grad_error: str | None, compile_error: str | None) -> None:
    """Record the compiled paths that failed on a call that works without them, with one warning."""
    global _compile_failed, _grad_failed
    if compile_error is not None:
        _compile_failed = _grad_failed = True
        warnings.warn(f"voxweight: fused=True could not compile ({compile_error}); using the eager path",
                      RuntimeWarning, stacklevel=4)
    elif grad_error is not None:
        _grad_failed = True
        warnings.warn(f"voxweight: fused=True could not compile the loss-and-gradient kernel ({grad_error}); "
                      "using the compiled loss", RuntimeWarning, stacklevel=4)


def _loss_and_extremes(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None, pos: torch.Tensor | None,
                       mask: torch.Tensor | None, logits: bool, reduction: str,
                       balance: tuple[str, float | None] | None, focal_gamma: float, tensors: list[torch.Tensor]
                       ) -> tuple[torch.Tensor, Extremes]:
    """The loss and the ``(min, max)`` of each tensor to value-check, in one function for the compiler."""
    loss = compute_bce(input, target, w, pos, mask, logits, reduction, balance, focal_gamma)
    return loss, range_extremes(tensors)


def _gradient_kernel_applies(input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None,
                             pos: torch.Tensor | None, reduction: str) -> bool:
    """A scalar loss whose only gradient is the input's, outside anyone else's compilation."""
    if _grad_failed or reduction == "none" or input.numel() == 0 or torch.compiler.is_compiling():
        return False
    if not (torch.is_grad_enabled() and input.requires_grad):
        return False
    return not any(t is not None and t.requires_grad for t in (target, w, pos))


def _compiled_loss(args: tuple) -> tuple[tuple[torch.Tensor, Extremes] | None, str | None]:
    """``torch.compile`` of the loss (AOTAutograd fuses its backward), or None and why it failed."""
    global _compiled
    if _compile_failed:
        return None, None
    try:
        if _compiled is None:
            _compiled = torch.compile(_loss_and_extremes)
        return _compiled(*args), None
    except Exception as err:  # compilation problems, or an input the eager path rejects too
        return None, f"{type(err).__name__}: {err}"


def _with_gradient(args: tuple) -> tuple[tuple[torch.Tensor, Extremes] | None, str | None]:
    """The loss through :class:`_LossWithGradient`, or None and why its kernel failed."""
    global _compiled_grad
    try:
        if _compiled_grad is None:
            _compiled_grad = torch.compile(torch.func.grad_and_value(_loss_and_extremes, has_aux=True))
        sink: list[Extremes] = []
        loss = _LossWithGradient.apply(*args, sink)
        return (loss, sink[0]), None
    except Exception as err:  # e.g. an older torch that cannot compile torch.func transforms
        return None, f"{type(err).__name__}: {err}"


class _LossWithGradient(torch.autograd.Function):
    """Forward: the compiled loss, its input gradient and the extremes. Backward: ``gradient * grad_loss``."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None,
                pos: torch.Tensor | None, mask: torch.Tensor | None, logits: bool, reduction: str,
                balance: tuple[str, float | None] | None, focal_gamma: float, tensors: list[torch.Tensor],
                sink: list[Extremes]) -> torch.Tensor:
        options = (logits, reduction, balance, focal_gamma)
        grad, (loss, extremes) = _compiled_grad(input, target, w, pos, mask, *options, tensors)
        sink.append(extremes)
        ctx.save_for_backward(input, target, w, pos, mask)
        ctx.options, ctx.grad = options, grad
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad, ctx.grad = ctx.grad, None
        if torch.is_grad_enabled():  # create_graph=True: a gradient that is itself differentiable, eagerly
            input, target, w, pos, mask = ctx.saved_tensors
            loss = compute_bce(input, target, w, pos, mask, *ctx.options)
            (grad,) = torch.autograd.grad(loss, input, create_graph=True)
            return (grad * grad_loss,) + (None,) * 10
        if grad is None:  # a second backward (retain_graph=True): compute the gradient again
            grad = _compiled_grad(*ctx.saved_tensors, *ctx.options, [])[0]
        return (grad.mul_(grad_loss),) + (None,) * 10
