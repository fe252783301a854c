r"""The soft clDice loss of Shit et al. (2021) with voxel weights and masks: a functional and a module.

.. math::

    T_{prec} = \frac{\sum_v w\, S(p)\, t + s}{\sum_v w\, S(p) + s},\qquad
    T_{sens} = \frac{\sum_v w\, S(t)\, p + s}{\sum_v w\, S(t) + s},\qquad
    L = 1 - \frac{2\, T_{prec}\, T_{sens}}{T_{prec} + T_{sens} + h}

``p`` are the probabilities, ``t`` the target, ``S`` the soft skeleton
(:func:`voxweight.losses.soft_skeleton.soft_skeleton`, ``iterations`` peeling steps), ``w`` the voxel weight,
``s`` = ``smooth`` and ``h`` = ``harmonic_smooth`` (0: the paper's and the authors' harmonic mean; MONAI's
``SoftclDiceLoss`` adds ``smooth=1e-4`` there). The sums run per sample over the channels and the voxels
together, as MONAI 1.6 does (``batch=True``: over the whole batch, as the authors' ``soft_cldice``); ``"mean"``
averages the samples' losses and ``"none"`` returns them, ``[N]`` (``[1]`` with ``batch``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from voxweight._validate import check_flag, check_float_tensor, check_positive_number, look_up_option
from voxweight.losses.align import align_map, check_mask, checked_weight
from voxweight.losses.base import WeightedLoss, option
from voxweight.losses.finite import LOW_PRECISION, saturate
from voxweight.losses.overlap import activate, drop_background, overlap_target, safe_ratio
from voxweight.losses.soft_skeleton import check_iterations, soft_skeleton

__all__ = ["CLDICE_REDUCTIONS", "ClDiceOptions", "VoxelWeightedClDice", "cldice_options", "topology_scores",
           "voxel_weighted_cldice", "weighted_cldice"]

CLDICE_REDUCTIONS = ("mean", "sum", "none")
_ACTIVATIONS = ("sigmoid", "softmax")


class ClDiceOptions(NamedTuple):
    """The validated options of the clDice loss (see :func:`cldice_options`)."""

    iterations: int
    activation: str | None
    include_background: bool
    smooth: float
    harmonic_smooth: float
    batch: bool
    reduction: str


def cldice_options(*, iterations: int = 3, activation: str | None = "sigmoid", include_background: bool = True,
                   smooth: float = 1.0, harmonic_smooth: float = 0.0, batch: bool = False, reduction: str = "mean"
                   ) -> ClDiceOptions:
    """Validate the options once (a module does it when built); see :func:`voxel_weighted_cldice`.

    Raises:
        TypeError: for a non-integer ``iterations``, non-bool flags, non-numeric smoothing.
        ValueError: for negative ``iterations`` or smoothing, an unknown ``activation`` or ``reduction``.

    Example:
        >>> cldice_options(iterations=5, activation=None).iterations
        5
    """
    iterations = check_iterations(iterations)
    if activation is not None:
        activation = look_up_option("activation", activation, _ACTIVATIONS)
    include_background, batch = check_flag("include_background", include_background), check_flag("batch", batch)
    smooth = check_positive_number("smooth", smooth, allow_zero=True)
    harmonic_smooth = check_positive_number("harmonic_smooth", harmonic_smooth, allow_zero=True)
    return ClDiceOptions(iterations, activation, include_background, smooth, harmonic_smooth, batch,
                         look_up_option("reduction", reduction, CLDICE_REDUCTIONS))


def voxel_weighted_cldice(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                          iterations: int = 3, activation: str | None = "sigmoid", include_background: bool = True,
                          smooth: float = 1.0, mask: torch.Tensor | None = None, reduction: str = "mean",
                          harmonic_smooth: float = 0.0, batch: bool = False) -> torch.Tensor:
    """The soft clDice loss with the voxel weight inside every sum; see :class:`VoxelWeightedClDice`.

    Args:
        input: logits ``[N, C, *spatial]`` (probabilities in [0, 1] for ``activation=None``), 1 to 3 or more
            spatial axes.
        target: binary or soft targets of ``input``'s shape, or class indices for ``"softmax"`` / None.
        weight: per-voxel map ``[N or 1, C or 1, *spatial]``, finite and >= 0: multiplies every voxel's term in
            the four sums. Scaling it by a constant leaves the loss unchanged when ``smooth`` is 0.
        iterations: soft-skeleton peeling steps, >= 0 (MONAI's ``iter_``).
        activation: ``"sigmoid"`` (per channel), ``"softmax"`` (over channels) or None.
        include_background: False drops channel 0 after the activation (MONAI's ``[:, 1:]``).
        smooth: ``s`` in the precision and sensitivity ratios, >= 0 (MONAI's ``smooth_nr = smooth_dr``).
        mask: bool, shaped like ``weight``: False voxels are background (0) of both ``p`` and ``t`` before the
            skeletons are taken, so they count in no sum and their logits have no effect (a structure cut by
            the mask is skeletonised as if it ended there).
        reduction: ``"mean"`` (over the samples), ``"sum"`` or ``"none"``.
        harmonic_smooth: ``h`` in the harmonic mean's denominator, >= 0 (MONAI's ``smooth``, 1e-4 there).
        batch: pool the sums over the batch too (one loss, as the authors' ``soft_cldice``).

    Returns:
        The reduced loss, or the per-sample losses ``[N]`` (``[1]`` with ``batch``) for ``"none"``.

    Raises:
        TypeError, ValueError: for bad tensors, shapes or options, naming the argument.

    Shape:
        - input: ``[N, C, *spatial]``; target: the same (or indices); weight, mask: ``[N or 1, C or 1, *spatial]``.

    Example:
        >>> p = torch.zeros(1, 1, 3, 3)
        >>> p[..., 0] = 0.8  # a vertical line of 0.8: its own skeleton
        >>> t = torch.zeros(1, 1, 3, 3)
        >>> t[..., 1, :] = 1.0  # a horizontal line
        >>> round(voxel_weighted_cldice(p, t, activation=None).item(), 6)  # 1 - 2 (9/17)(9/20) / (9/17 + 9/20)
        0.513514
    """
    options = cldice_options(iterations=iterations, activation=activation, include_background=include_background,
                             smooth=smooth, harmonic_smooth=harmonic_smooth, batch=batch, reduction=reduction)
    return weighted_cldice(input, target, weight, options, mask=mask)


def weighted_cldice(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, options: ClDiceOptions,
                    *, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`voxel_weighted_cldice` with validated options (float16/bfloat16 computed in float32, saturated back).

    Shape:
        - as for :func:`voxel_weighted_cldice`.

    Example:
        >>> weighted_cldice(torch.zeros(2, 1, 4), torch.zeros(2, 1, 4), None, cldice_options(reduction="none"))
        tensor([0., 0.])
    """
    tprec, tsens = topology_scores(input, target, weight, options, mask=mask)
    den = tprec + tsens + options.harmonic_smooth
    harmonic = torch.where(den > 0, 2 * tprec * tsens / torch.where(den > 0, den, 1.0), 0.0)  # both 0: none found
    losses = 1 - harmonic
    if options.reduction != "none":
        losses = losses.mean() if options.reduction == "mean" else losses.sum()
    return saturate(losses, input.dtype) if input.dtype in LOW_PRECISION else losses


def topology_scores(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, options: ClDiceOptions,
                    *, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The topology precision and sensitivity ``(T_prec, T_sens)`` of the module docstring, per sample.

    With ``smooth = 0`` a ratio whose denominator is 0 (no skeleton there) is 1: nothing to get wrong.

    Returns:
        Two tensors ``[N]`` (``[1]`` with ``options.batch``), in float32 for float16/bfloat16 input.

    Shape:
        - as for :func:`voxel_weighted_cldice`.

    Example:
        >>> t = torch.tensor([[[0.0, 1.0, 0.0]]])
        >>> topology_scores(t, t, None, cldice_options(activation=None))
        (tensor([1.]), tensor([1.]))
    """
    p, t, w = _prepared(input, target, weight, mask, options)
    skel_p = soft_skeleton(p, options.iterations)
    with torch.no_grad():
        skel_t = soft_skeleton(t, options.iterations)
    smooth = options.smooth
    if w is not None:  # the ratios are unchanged when w and s are scaled together: w / max(w) keeps the sums finite
        top = w.detach().amax()
        top = torch.where(top > 0, top, torch.ones_like(top))
        w, smooth = w / top, smooth / top
        skel_p, skel_t = skel_p * w, skel_t * w
    dims = tuple(range(0 if options.batch else 1, p.ndim))
    tprec = safe_ratio(_dot(skel_p, t, dims) + smooth, skel_p.sum(dims) + smooth)
    tsens = safe_ratio(_dot(skel_t, p, dims) + smooth, skel_t.sum(dims) + smooth)
    return (tprec, tsens) if not options.batch else (tprec.reshape(1), tsens.reshape(1))


def _dot(a: torch.Tensor, b: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``sum(a * b)`` over ``dims`` (all but the batch axis, or all)."""
    if len(dims) == a.ndim:
        return torch.dot(a.reshape(-1), b.reshape(-1))
    return torch.linalg.vecdot(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))


def _prepared(input: Any, target: Any, weight: Any, mask: Any, options: ClDiceOptions
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Probabilities, target and weight map, masked voxels 0 in ``p`` and ``t``, background dropped if asked."""
    input = check_float_tensor("input", input)
    if input.ndim < 3:
        raise ValueError(f"input: expected [N, C, *spatial] with at least one spatial axis, got {list(input.shape)}")
    x = input.float() if input.dtype in LOW_PRECISION else input
    t = overlap_target(target, x, single_label=options.activation != "sigmoid")
    w = align_map("weight", checked_weight("weight", weight, x, tensor_only=True), x.shape)
    m = check_mask(mask, x, broadcast_to=x.shape)
    p = activate(x if m is None else torch.where(m, x, 0.0), options.activation)  # a masked logit is never read
    if m is not None:  # background of both maps: zero voxels have a zero skeleton, so they count nowhere
        p, t = torch.where(m, p, 0.0), torch.where(m, t, 0.0)
    if not options.include_background:
        p, t, w, _ = drop_background(p, t, w, None)
    return p, t, w


class VoxelWeightedClDice(WeightedLoss):
    r"""The soft clDice loss (Shit et al. 2021, "clDice", CVPR) with voxel weights and masks.

    ``L = 1 - 2 T_prec T_sens / (T_prec + T_sens + h)``, ``T_prec = (sum w S(p) t + s) / (sum w S(p) + s)``,
    ``T_sens = (sum w S(t) p + s) / (sum w S(t) + s)``, the sums per sample over channels and voxels (see the
    module docstring). Without weights or mask it equals MONAI 1.6's ``SoftclDiceLoss(iter_=iterations,
    smooth_nr=smooth, smooth_dr=smooth, smooth=harmonic_smooth)`` (given probabilities, or ``sigmoid=True`` /
    ``softmax=True``) to float rounding, and with ``batch=True`` the authors' ``soft_cldice(smooth=smooth)``
    (whose skeleton always takes 10 iterations, whatever its ``iter_``: ``iterations=10``). The soft skeleton is
    taken on the voxel grid (no spacing), as in both. Defined for the degenerate cases: an empty target and
    prediction give 0 (with ``smooth > 0``); an all-ones map has an empty skeleton (the volume's edge is not
    background), so its ratio is 1; a one-voxel structure is its own skeleton.

    Args:
        iterations: soft-skeleton peeling steps, >= 0.
        activation: ``"sigmoid"``, ``"softmax"`` or None.
        include_background: keep channel 0 (False drops it).
        smooth: ``s``, >= 0.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        harmonic_smooth: ``h``, >= 0.
        batch: pool the sums over the batch.
        weight_fn: called as ``weight_fn(target)`` (without gradient) when ``forward`` gets no ``weight``.

    Shape:
        - input: ``[N, C, *spatial]``; target: the same; weight, mask: ``[N or 1, C or 1, *spatial]``.

    Example:
        >>> loss_fn = VoxelWeightedClDice(iterations=3)
        >>> x, t = torch.randn(2, 1, 8, 8, 8), (torch.rand(2, 1, 8, 8, 8) > 0.5).float()
        >>> bool(0 <= loss_fn(x, t, 1 + 4 * t) <= 1)
        True
    """

    options: ClDiceOptions
    make_options = cldice_options
    iterations = option("iterations", "Soft-skeleton peeling steps, >= 0.")
    activation = option("activation", "``'sigmoid'``, ``'softmax'`` or None.")
    include_background = option("include_background", "Whether channel 0 counts.")
    smooth = option("smooth", "The precision and sensitivity smoothing ``s``.")
    harmonic_smooth = option("harmonic_smooth", "The harmonic mean's smoothing ``h``.")
    batch = option("batch", "Whether the sums pool the batch.")
    reduction = option("reduction", "The reduction (validated when assigned).")

    def __init__(self, *, iterations: int = 3, activation: str | None = "sigmoid", include_background: bool = True,
                 smooth: float = 1.0, reduction: str = "mean", harmonic_smooth: float = 0.0, batch: bool = False,
                 weight_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__(cldice_options(iterations=iterations, activation=activation,
                                        include_background=include_background, smooth=smooth,
                                        harmonic_smooth=harmonic_smooth, batch=batch, reduction=reduction), weight_fn)

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss; ``weight`` and ``mask`` may change on every call."""
        return weighted_cldice(input, target, self.voxel_map(weight, target), self.options, mask=mask)

    def extra_repr(self) -> str:
        """Configuration shown by ``repr``."""
        o = self.options
        parts = [f"iterations={o.iterations}", f"activation={o.activation!r}",
                 f"include_background={o.include_background}", f"smooth={o.smooth}",
                 f"harmonic_smooth={o.harmonic_smooth}", f"batch={o.batch}", f"reduction={o.reduction!r}"]
        return ", ".join([*parts, *self.weights_repr()])
