"""Voxel-weighted binary cross-entropy: a functional and a module with the same semantics.

The maths is torch's own (``binary_cross_entropy_with_logits`` / ``binary_cross_entropy``, times the focal
factor of :mod:`voxweight.losses.focal` with ``focal_gamma``); this module adds alignment by meaning and
reductions that say what they divide by. See :class:`VoxelWeightedBCE` for the formula and the conventions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from voxweight._validate import (
    check_flag,
    check_float_tensor,
    check_positive_number,
    check_same_device,
    check_tensor,
    look_up_option,
)
from voxweight.checks import check_range, deferred_value_checks
from voxweight.losses.align import (
    WeightLike,
    align_batch,
    align_channel,
    align_map,
    check_mask,
    checked_weight,
    multiply,
)
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.eager import compute_bce
from voxweight.losses.finite import LOW_PRECISION, saturate
from voxweight.losses.focal import check_focal_gamma
from voxweight.losses.fused import fused_bce
from voxweight.losses.reduce import REDUCTIONS
from voxweight.losses.sync import check_sync, synced
from voxweight.maps.balance import BALANCE_MODES

__all__ = ["REDUCTIONS", "BCEOptions", "VoxelWeightedBCE", "bce_options", "voxel_weighted_bce", "weighted_bce"]


class BCEOptions(NamedTuple):
    """The validated options of the BCE (see :func:`bce_options`)."""

    logits: bool
    reduction: str
    fused: bool
    balance: str | None
    balance_max_weight: float | None
    focal_gamma: float
    sync: bool = False


def bce_options(*, logits: bool = True, reduction: str = "mean", fused: bool = False, balance: str | None = None,
                balance_max_weight: float | None = None, focal_gamma: float = 0.0, sync: bool = False) -> BCEOptions:
    """Validate the BCE's options once (a module does it when built); see :func:`voxel_weighted_bce`.

    Raises:
        TypeError: for non-bool ``logits``/``fused``/``sync``, a non-numeric ``balance_max_weight`` or ``focal_gamma``.
        ValueError: for an unknown ``reduction`` or ``balance``, a ``balance_max_weight`` that is not a finite
            number > 0, a ``focal_gamma`` that is not a finite number >= 0 (``10**400`` included), or
            ``sync=True`` with ``reduction="none"``.

    Example:
        >>> bce_options(balance="balanced", focal_gamma=2)[3:]  # balance, balance_max_weight, focal_gamma, sync
        ('balanced', None, 2.0, False)
    """
    reduction = look_up_option("reduction", reduction, REDUCTIONS)
    logits = check_flag("logits", logits)
    fused = check_flag("fused", fused)
    if balance is not None:
        balance = look_up_option("balance", balance, BALANCE_MODES)
    if balance_max_weight is not None:
        balance_max_weight = check_positive_number("balance_max_weight", balance_max_weight)
    return BCEOptions(logits, reduction, fused, balance, balance_max_weight, check_focal_gamma(focal_gamma),
                      check_sync(sync, reduction, REDUCTIONS))


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
    focal_gamma: float = 0.0,
    sync: bool = False,
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
        fused: ``torch.compile``-fused forward and backward (faster and lighter after a one-off compilation
            of seconds; eager, with a warning, where compiling is unavailable); the gradient of a reduced
            loss and the value checks come from the forward kernel. Equal to the eager path to rounding
            (values, first and second derivatives). Off by default: the eager path is bit-for-bit torch.
        balance: foreground/background rebalancing computed inside the loss, per sample and channel, from
            the target's own foreground fraction (``"balanced"``, ``"inverse_frequency"``, ``"sqrt_inverse"``):
            the same as multiplying ``weight`` by ``class_balance_weights(target, mode=balance)``, without a
            map from the data loader. The map is never materialised: eagerly (with logits, no ``pos_weight``,
            ``mask``, per-voxel ``weight`` or ``focal_gamma``) two reductions per sample and channel replace
            it, and ``fused=True`` folds it into the kernel; other combinations build it as a temporary.
        balance_max_weight: clips the ``balance`` weights from above.
        focal_gamma: the focal loss's exponent ``gamma >= 0``: each element loss times ``(1 - p_t)^gamma``
            (see :class:`VoxelWeightedBCE`); 0 (the default) is exactly the plain BCE.
        sync: under ``torch.distributed`` (more than one rank), every rank returns the loss of the whole batch
            and DDP's averaged gradient is its gradient (:mod:`voxweight.losses.sync`); else no effect.

    Returns:
        The reduced loss (0-d) or, for ``"none"``, the element losses with masked elements set to 0.

    Raises:
        TypeError: for non-tensor or integer ``input``, a non-bool ``mask``, non-numeric weights.
        ValueError: for shapes that do not line up, targets or probabilities outside [0, 1], negative or
            non-finite weights, tensors on another device, bad options (see :func:`bce_options`).

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
    options = bce_options(logits=logits, reduction=reduction, fused=fused, balance=balance,
                          balance_max_weight=balance_max_weight, focal_gamma=focal_gamma, sync=sync)
    return weighted_bce(input, target, weight, options, pos_weight=pos_weight, class_weight=class_weight,
                        sample_weight=sample_weight, mask=mask)


def weighted_bce(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, options: BCEOptions, *,
                 pos_weight: WeightLike | None = None, class_weight: WeightLike | None = None,
                 sample_weight: WeightLike | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`voxel_weighted_bce` with options validated beforehand (:func:`bce_options`); tensors checked here.

    Shape:
        - as for :func:`voxel_weighted_bce`.

    Example:
        >>> weighted_bce(torch.zeros(1, 1, 2), torch.ones(1, 1, 2), None, bce_options(reduction="sum"))
        tensor(1.3863)
    """
    input = check_float_tensor("input", input)
    dtype, low = input.dtype, input.dtype in LOW_PRECISION
    if low and (options.balance is not None or options.focal_gamma):  # e.g. balance weights (131072 for one
        input = saturate(input, torch.float32)  # voxel in 64^3) overflow float16: computed in float32
    with deferred_value_checks(enabled=options.fused) as pending:  # fused: value checks run inside the kernel
        target = _prepare_target(target, input)
        if not options.logits:
            check_range("input", input, 0.0, 1.0, "probabilities in [0, 1] (logits=False)")
        shape = input.shape
        pos = align_channel("pos_weight", checked_weight("pos_weight", pos_weight, input), shape)
        w = multiply(align_map("weight", checked_weight("weight", weight, input, tensor_only=True), shape),
                     align_channel("class_weight", checked_weight("class_weight", class_weight, input), shape),
                     align_batch("sample_weight", checked_weight("sample_weight", sample_weight, input), shape))
    if options.balance is not None and target.ndim < 3:
        raise ValueError(f"balance: expected input with spatial axes [N, C, *spatial] to measure the foreground "
                         f"fraction over, got shape {list(target.shape)}")
    spec = None if options.balance is None else (options.balance, options.balance_max_weight)
    m = check_mask(mask, input, broadcast_to=input.shape)
    args = (input, target, w, pos, m, options.logits, options.reduction, spec, options.focal_gamma)
    sync = synced(options.sync)
    loss = fused_bce(*args, checks=pending, sync=sync) if options.fused else compute_bce(*args, sync=sync)
    return saturate(loss, dtype) if low else loss  # float16 sums overflow: the largest finite value instead


def _prepare_target(target: Any, input: torch.Tensor) -> torch.Tensor:
    check_tensor("target", target)
    if target.is_complex():
        raise TypeError(f"target: expected a real, bool or integer tensor, got dtype {target.dtype}")
    if target.shape != input.shape:
        missing = target.ndim == input.ndim - 1 and input.ndim > 1 and input.shape[1] == 1
        hint = " (a target of shape [N, *spatial] needs its channel axis: target.unsqueeze(1))" if missing else ""
        raise ValueError(f"target: expected the shape of input {list(input.shape)}, got {list(target.shape)}{hint}")
    check_same_device("target", target, input.device)
    check_range("target", target, 0.0, 1.0, "values in [0, 1]")
    return target.to(input.dtype)


class VoxelWeightedBCE(WeightedLoss):
    r"""Binary cross-entropy whose weights mean what you think they mean.

    For every element (sample ``n``, channel ``c``, voxel ``v``) with logit ``x``, probability
    ``s = sigmoid(x)`` (or ``s = input`` with ``logits=False``) and target ``t`` in [0, 1]:

    .. math::

        l = -\,w_{n,c,v}\, a_c\, b_n\, (1 - p_t)^\gamma \,[\, p_c\, t \log s + (1 - t) \log(1 - s) \,]

    with ``w`` the per-voxel ``weight`` map, ``a`` the ``class_weight``, ``b`` the ``sample_weight``, ``p``
    the ``pos_weight`` and ``gamma = focal_gamma`` the focal exponent (Lin et al. 2017), ``1 - p_t =
    s (1 - t) + (1 - s) t`` (soft targets too; 0 by default: the plain BCE; see :mod:`voxweight.losses.focal`).
    Unlike ``torch.nn.BCEWithLogitsLoss``, a ``[C]`` ``pos_weight`` or ``class_weight`` always goes on the channel
    axis (dim 1), never on the last spatial axis; a ``[N]`` ``sample_weight`` on the batch axis. Reductions:

    * ``"mean"``: ``sum(l) / #counted elements`` (masked elements never count), torch's ``"mean"`` without a mask;
    * ``"weighted_mean"``: ``sum(l) / sum(w a b (1 + (p - 1) t))``, a true weighted average of the plain
      per-element BCE (unchanged if every weight is scaled; ``focal_gamma`` leaves this denominator as it is);
    * ``"sum"``; ``"none"`` (element losses, masked elements set to 0).

    ``sync=True`` under ``torch.distributed``: each sum above runs over every rank's elements (the weights'
    maximum too), so every rank returns the loss of the concatenated batch (:mod:`voxweight.losses.sync`).

    An empty selection reduces to 0, not NaN. With no weights and no mask, values and gradients are those
    of ``F.binary_cross_entropy_with_logits`` (or ``F.binary_cross_entropy``), which do the maths. float16 and
    bfloat16 with ``balance``/``focal_gamma`` in float32; their results saturate at the dtype's largest finite value
    (not inf). ``"weighted_mean"`` divides the weights by their maximum first: 3e38 or 1e-44 give finite results.

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
        focal_gamma: the focal exponent ``gamma >= 0`` of the formula above; 0 (default) is the plain BCE.
        sync: reduce over every ``torch.distributed`` rank (see :func:`voxel_weighted_bce`).

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
    options: BCEOptions
    make_options = bce_options
    logits = option("logits", "Whether ``input`` holds logits (validated when assigned).")
    reduction = option("reduction", "The reduction (validated when assigned).")
    fused = option("fused", "Whether the loss runs in compiled kernels.")
    balance = option("balance", "In-loss class-balance mode, or None.")
    balance_max_weight = option("balance_max_weight", "Upper bound of the in-loss balance weights, or None.")
    focal_gamma = option("focal_gamma", "The focal exponent gamma >= 0 (validated when assigned).")
    sync = option("sync", "Whether the reduction runs over every torch.distributed rank.")

    def __init__(self, pos_weight: WeightLike | None = None, class_weight: WeightLike | None = None, *,
                 logits: bool = True, reduction: str = "mean",
                 weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None, fused: bool = False,
                 balance: str | None = None, balance_max_weight: float | None = None, focal_gamma: float = 0.0,
                 sync: bool = False) -> None:
        options = bce_options(logits=logits, reduction=reduction, fused=fused, balance=balance,
                              balance_max_weight=balance_max_weight, focal_gamma=focal_gamma, sync=sync)
        super().__init__(options, weight_fn, pos_weight=pos_weight, class_weight=class_weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                sample_weight: WeightLike | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss; see the class docstring. ``weight`` may change on every call."""
        return weighted_bce(input, target, self.voxel_map(weight, target), self.options, pos_weight=self.pos_weight,
                            class_weight=self.class_weight, sample_weight=sample_weight, mask=mask)

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        o = self.options
        extra = {"fused": o.fused, "balance": o.balance, "focal_gamma": o.focal_gamma, "sync": o.sync}  # when set
        parts = [f"logits={o.logits}", f"reduction={o.reduction!r}"] + [f"{k}={v!r}" for k, v in extra.items() if v]
        return ", ".join(parts + self.weights_repr())
