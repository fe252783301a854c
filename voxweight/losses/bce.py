"""Voxel-weighted binary cross-entropy: a functional and a module with the same semantics.

The maths is torch's own (``binary_cross_entropy_with_logits`` / ``binary_cross_entropy``); what this
module adds is alignment by meaning and reductions that say what they divide by. See
:class:`VoxelWeightedBCE` for the formula and the conventions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from voxweight.checks import (
    check_broadcastable_to,
    check_float_tensor,
    check_positive_number,
    check_range,
    check_same_device,
    check_tensor,
    deferred_value_checks,
    describe,
    look_up_option,
)
from voxweight.losses.align import (
    WeightLike,
    align_batch,
    align_channel,
    align_map,
    check_weight_fn,
    checked_weight,
    multiply,
    weight_buffer,
    weight_or_fn,
)
from voxweight.losses.eager import compute_bce
from voxweight.losses.fused import fused_bce
from voxweight.maps.balance import BALANCE_MODES

__all__ = ["REDUCTIONS", "VoxelWeightedBCE", "voxel_weighted_bce"]

REDUCTIONS = ("mean", "sum", "none", "weighted_mean")
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def voxel_weighted_bce(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    pos_weight: WeightLike | None = None,
    class_weight: WeightLike | None = None,
    sample_weight: WeightLike | None = None,
    mask: torch.Tensor | None = None,
    logits: bool = True,
    reduction: str = "mean",
    fused: bool = False,
    balance: str | None = None,
    balance_max_weight: float | None = None,
) -> torch.Tensor:
    """Binary cross-entropy with per-voxel, per-class and per-sample weights that align by meaning.

    The full description, formula and conventions are on :class:`VoxelWeightedBCE`; this is the same
    computation with every weight passed per call (a new ``weight`` map on every batch is the point).

    Args:
        input: logits (``logits=True``) or probabilities in [0, 1] (``logits=False``), floating point.
        target: same shape as ``input``; float, bool or integer values in [0, 1] (soft labels allowed).
        weight: per-element map with ``input``'s number of dims, each dim equal or 1.
        pos_weight: weight of the positive term per class: a number, a sequence/``[C]`` tensor (put on the
            channel axis, dim 1) or a full-ndim tensor.
        class_weight: weight of the whole element loss per class, aligned like ``pos_weight``.
        sample_weight: ``[N]`` weight per sample, aligned to the batch axis (dim 0).
        mask: bool, ``input``'s number of dims, each dim equal or 1; False elements are not counted.
        logits: whether ``input`` holds logits (default) or probabilities.
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        fused: run forward and backward as ``torch.compile``-fused kernels (faster and lighter after a
            one-off compilation of several seconds; falls back to eager, with a warning, where compiling
            is unavailable). A reduced loss whose only gradient is ``input``'s gets its gradient in the
            forward kernel, and the value checks run inside it too. Agrees with the eager path to float
            rounding (values and first and second derivatives). Off by default: the eager path is
            bit-for-bit torch.
        balance: foreground/background rebalancing computed inside the loss, per sample and channel, from
            the target's own foreground fraction (``"balanced"``, ``"inverse_frequency"``, ``"sqrt_inverse"``):
            the same as multiplying ``weight`` by ``class_balance_weights(target, mode=balance)``, without a
            map from the data loader. The map is never materialised: eagerly (with logits, no ``pos_weight``
            or ``mask``, no per-voxel ``weight``) two reductions per sample and channel replace it, and with
            ``fused=True`` the compiled kernel folds it in; the other combinations build it as a temporary.
        balance_max_weight: clips the ``balance`` weights from above.

    Returns:
        The reduced loss (0-d) or, for ``"none"``, the element losses with masked elements set to 0.

    Raises:
        TypeError: for non-tensor or integer ``input``, a non-bool ``mask``, non-numeric weights.
        ValueError: for shapes that do not line up, targets or probabilities outside [0, 1], negative or
            non-finite weights, tensors on another device, an unknown ``reduction``.

    Shape:
        - input, target: ``[N, C, *spatial]`` (zero or more spatial dims, so ``[N, C]`` works).
        - weight, mask: ``[N or 1, C or 1, *spatial or 1]``.
        - pos_weight, class_weight: scalar, ``[C]`` or ``[N or 1, C or 1, *spatial or 1]``.
        - sample_weight: ``[N]``.
        - output: scalar, or ``input``'s shape for ``"none"``.

    Example:
        >>> import torch
        >>> from voxweight import voxel_weighted_bce
        >>> x, t = torch.zeros(2, 3, 4, 4, 4), torch.ones(2, 3, 4, 4, 4)
        >>> voxel_weighted_bce(x, t, pos_weight=[1.0, 2.0, 4.0])  # one weight per channel, not per W
        tensor(1.6173)
    """
    reduction = look_up_option("reduction", reduction, REDUCTIONS)
    _check_flag("logits", logits)
    _check_flag("fused", fused)
    input = check_float_tensor("input", input)
    with deferred_value_checks(enabled=fused) as pending:  # fused: value checks run inside the kernel
        target = _prepare_target(target, input)
        if not logits:
            check_range("input", input, 0.0, 1.0, "probabilities in [0, 1] (logits=False)")
        shape = input.shape
        pos = align_channel("pos_weight", _weight("pos_weight", pos_weight, input), shape)
        w = multiply(
            align_map("weight", _weight("weight", weight, input, tensor_only=True), shape),
            align_channel("class_weight", _weight("class_weight", class_weight, input), shape),
            align_batch("sample_weight", _weight("sample_weight", sample_weight, input), shape),
        )
    spec = None if balance is None else _balance_spec(balance, balance_max_weight, target)
    m = _prepare_mask(mask, input)
    if fused:
        return fused_bce(input, target, w, pos, m, logits, reduction, spec, checks=pending)
    return compute_bce(input, target, w, pos, m, logits, reduction, spec)


def _balance_spec(mode: Any, max_weight: Any, target: torch.Tensor) -> tuple[str, float | None]:
    """Validated ``(mode, max_weight)`` for the in-loss class-balance map."""
    mode = look_up_option("balance", mode, BALANCE_MODES)
    if max_weight is not None:
        max_weight = check_positive_number("balance_max_weight", max_weight)
    if target.ndim < 3:
        raise ValueError(f"balance: expected input with spatial axes [N, C, *spatial] to measure the foreground "
                         f"fraction over, got shape {list(target.shape)}")
    return mode, max_weight


def _check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {describe(value)}")


def _weight(name: str, value: Any, input: torch.Tensor, tensor_only: bool = False) -> torch.Tensor | None:
    if tensor_only and value is not None:
        check_tensor(name, value)
    return checked_weight(name, value, input)


def _prepare_target(target: Any, input: torch.Tensor) -> torch.Tensor:
    check_tensor("target", target)
    if target.is_complex():
        raise TypeError(f"target: expected a real, bool or integer tensor, got dtype {target.dtype}")
    if target.shape != input.shape:
        hint = ""
        if target.ndim == input.ndim - 1 and input.ndim > 1 and input.shape[1] == 1:
            hint = " (a target of shape [N, *spatial] needs its channel axis: target.unsqueeze(1))"
        raise ValueError(f"target: expected the shape of input {list(input.shape)}, got "
                         f"{list(target.shape)}{hint}")
    check_same_device("target", target, input.device)
    check_range("target", target, 0.0, 1.0, "values in [0, 1]")
    return target.to(input.dtype)


def _prepare_mask(mask: Any, input: torch.Tensor) -> torch.Tensor | None:
    if mask is None:
        return None
    check_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask: expected a bool tensor (True = counted), got dtype {mask.dtype}")
    check_same_device("mask", mask, input.device)
    check_broadcastable_to("mask", mask, input.shape)
    return mask


class VoxelWeightedBCE(nn.Module):
    r"""Binary cross-entropy whose weights mean what you think they mean.

    For every element (sample ``n``, channel ``c``, voxel ``v``) with logit ``x``, probability
    ``s = sigmoid(x)`` (or ``s = input`` with ``logits=False``) and target ``t`` in [0, 1]:

    .. math::

        l = -\,w_{n,c,v}\, a_c\, b_n \,[\, p_c\, t \log s + (1 - t) \log(1 - s) \,]

    with ``w`` the per-voxel ``weight`` map, ``a`` the ``class_weight``, ``b`` the ``sample_weight`` and
    ``p`` the ``pos_weight``. Unlike ``torch.nn.BCEWithLogitsLoss``, a ``[C]`` ``pos_weight`` or
    ``class_weight`` always goes on the channel axis (dim 1), never on the last spatial axis, and a
    ``[N]`` ``sample_weight`` goes on the batch axis. Reductions (masked-out elements never count):

    * ``"mean"``: ``sum(l) / #counted elements``, equal to torch's ``"mean"`` when there is no mask;
    * ``"weighted_mean"``: ``sum(l) / sum(w a b (1 + (p - 1) t))``, a true weighted average of the plain
      per-element BCE (scaling every weight by a constant leaves it unchanged);
    * ``"sum"``; ``"none"`` (element losses, masked elements set to 0).

    An empty selection reduces to 0, not NaN. With no weights and no mask, values and gradients are those
    of ``F.binary_cross_entropy_with_logits`` (or ``F.binary_cross_entropy``), which do the maths.

    Args:
        pos_weight: weight of the positive term per class (number, sequence, ``[C]`` or full-ndim tensor);
            typically negatives / positives per class (``voxweight.LabelStats.pos_weight``). Stored as a
            buffer: it follows ``.to()`` and ``state_dict``.
        class_weight: weight of the whole loss per class, aligned and stored like ``pos_weight``.
        logits: whether ``input`` holds logits (default) or probabilities in [0, 1].
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"weighted_mean"``.
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``,
            to build the map on the batch's device, e.g. ``functools.partial(class_balance_weights)``.
        fused: ``torch.compile``-fused forward and backward (see :func:`voxel_weighted_bce`).
        balance, balance_max_weight: in-loss foreground/background rebalancing per sample and channel,
            without a weight map (see :func:`voxel_weighted_bce`).

    Shape:
        - input, target: ``[N, C, *spatial]``; weight, mask: same ndim, each dim equal or 1.
        - sample_weight: ``[N]``; output: scalar, or ``input``'s shape for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from voxweight import VoxelWeightedBCE
        >>> loss_fn = VoxelWeightedBCE(pos_weight=[9.0, 4.0])  # negatives / positives per class
        >>> x, t = torch.zeros(1, 2, 8, 8, 8), torch.zeros(1, 2, 8, 8, 8)
        >>> w = torch.ones(1, 1, 8, 8, 8)  # a new voxel map every batch, shared by both channels
        >>> loss_fn(x, t, w)
        tensor(0.6931)
    """

    pos_weight: torch.Tensor | None
    class_weight: torch.Tensor | None

    def __init__(
        self,
        pos_weight: WeightLike | None = None,
        class_weight: WeightLike | None = None,
        *,
        logits: bool = True,
        reduction: str = "mean",
        weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        fused: bool = False,
        balance: str | None = None,
        balance_max_weight: float | None = None,
    ) -> None:
        super().__init__()
        _check_flag("logits", logits)
        _check_flag("fused", fused)
        check_weight_fn(weight_fn)
        self.logits = logits
        self.fused = fused
        self.balance = None if balance is None else look_up_option("balance", balance, BALANCE_MODES)
        self.balance_max_weight = (None if balance_max_weight is None
                                   else check_positive_number("balance_max_weight", balance_max_weight))
        self.reduction = look_up_option("reduction", reduction, REDUCTIONS)
        self.weight_fn = weight_fn
        self.register_buffer("pos_weight", weight_buffer("pos_weight", pos_weight))
        self.register_buffer("class_weight", weight_buffer("class_weight", class_weight))

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        *,
        sample_weight: WeightLike | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss; see the class docstring. ``weight`` may change on every call."""
        weight = weight_or_fn(weight, self.weight_fn, target)
        return voxel_weighted_bce(
            input, target, weight, pos_weight=self.pos_weight, class_weight=self.class_weight,
            sample_weight=sample_weight, mask=mask, logits=self.logits, reduction=self.reduction, fused=self.fused,
            balance=self.balance, balance_max_weight=self.balance_max_weight,
        )

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        parts = [f"logits={self.logits}", f"reduction={self.reduction!r}"] + (["fused=True"] if self.fused else [])
        if self.balance is not None:
            parts.append(f"balance={self.balance!r}")
        parts += [f"{n}={list(b.shape)}" for n, b in (("pos_weight", self.pos_weight),
                                                       ("class_weight", self.class_weight)) if b is not None]
        if self.weight_fn is not None:
            parts.append(f"weight_fn={getattr(self.weight_fn, '__name__', type(self.weight_fn).__name__)}")
        return ", ".join(parts)
