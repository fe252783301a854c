"""Deep supervision: one voxweight loss over a network's outputs at several resolutions, weight maps included.

The target is resampled to each output's scale (nearest for hard labels, area for soft ones), weight maps
are area-averaged (each region keeps its share of the total weight) and masks shrink (a coarse voxel counts
only where all the fine voxels it covers count). Scales are integer pooling factors of the target. A tubed
skeleton (the Skeleton Recall term's second target) is max-pooled by default, so no skeleton voxel is lost.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from voxweight._validate import as_weight_tensor, check_tensor, describe, look_up_option, plain_tensor
from voxweight.losses.align import WeightLike, check_mask
from voxweight.losses.resample import downsample

__all__ = ["SCALE_WEIGHTS", "TARGET_MODES", "DeepSupervision", "downsample", "scale_weights_for"]

SCALE_WEIGHTS = ("nnunet", "monai")
TARGET_MODES = ("nearest", "area", "max")


def scale_weights_for(scale_weights: str | Sequence[float], levels: int) -> list[float]:
    """The weight of each of ``levels`` outputs, full resolution first.

    ``"nnunet"``: ``w_i = 2^-i``, the coarsest set to 0, normalised to sum 1 (one output: ``[1]``), as
    nnU-Net's trainer. ``"monai"``: ``w_i = max(2^-i, 1/16)``, not normalised, as MONAI's
    ``DeepSupervisionLoss(weight_mode="exp")``. A sequence is used as given (one per output).

    Args:
        scale_weights: ``"nnunet"``, ``"monai"`` or a sequence of non-negative numbers, not all zero.
        levels: the number of outputs, >= 1.

    Returns:
        ``levels`` floats.

    Raises:
        TypeError: for a ``scale_weights`` that is neither a known name nor a sequence of numbers.
        ValueError: for an unknown name (with "did you mean"), negative, non-finite or all-zero weights, or
            a sequence whose length is not ``levels``.

    Example:
        >>> scale_weights_for("nnunet", 3), scale_weights_for("monai", 6)
        ([0.6666666666666666, 0.3333333333333333, 0.0], [1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625])
    """
    if isinstance(scale_weights, str):
        name = look_up_option("scale_weights", scale_weights, SCALE_WEIGHTS)
        if name == "monai":
            return [max(0.5**i, 0.0625) for i in range(levels)]
        raw = [0.5**i for i in range(levels)]
        if levels > 1:
            raw[-1] = 0.0
        return [w / sum(raw) for w in raw]
    weights = _check_sequence(scale_weights)
    if len(weights) != levels:
        raise ValueError(f"scale_weights: expected one weight per output ({levels} outputs), got {len(weights)}: "
                         f"{list(weights)}")
    return list(weights)


def _check_sequence(value: Any) -> tuple[float, ...]:
    """Validate a sequence of scale weights: real numbers, finite, >= 0, not all zero."""
    if isinstance(value, torch.Tensor | np.ndarray):
        value = value.tolist() if value.ndim == 1 else value
    ok = isinstance(value, Sequence) and not isinstance(value, str) and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in value)
    if not ok:
        raise TypeError(f"scale_weights: expected {' or '.join(repr(s) for s in SCALE_WEIGHTS)} or a sequence of "
                        f"numbers (one per output), got {describe(value)}")
    weights = tuple(float(v) for v in value)
    if not weights or any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
        raise ValueError(f"scale_weights: expected finite non-negative numbers, not all zero, got {list(weights)}")
    return weights


class DeepSupervision(nn.Module):
    r"""Deep supervision around any voxweight loss: a weighted sum of the loss at every output's scale.

    For outputs :math:`x_0, \dots, x_{K-1}` (full to coarse resolution) with scale weights :math:`s_i`:

    .. math::

        L = \sum_{i:\, s_i > 0} s_i\, \mathrm{loss}(x_i,\ R_i(t),\ A_i(w),\ \mathrm{sample\_weight},\ M_i(m))

    ``R_i`` resamples the target to ``x_i``'s spatial size: ``"nearest"`` keeps the voxel at
    ``f * j + f // 2`` of each block of ``f`` (torch's ``"nearest-exact"``, as MONAI's
    ``DeepSupervisionLoss`` and nnU-Net; integer class indices ``[N, *spatial]`` or ``[N, 1, *spatial]``
    stay integer), ``"area"`` averages each block (soft targets), ``"max"`` keeps each block's maximum (a
    tubed skeleton as the target of :class:`voxweight.SkeletonRecallLoss`). ``A_i`` averages the weight map over
    each block, so a coarse voxel's weight is the mean of the fine voxels it covers (a region's total
    weight, divided by the voxel count ratio ``prod(f)``, is kept). ``M_i`` keeps a coarse voxel only if
    all the fine voxels it covers are kept. Map axes of size 1 stay 1 (they broadcast). ``sample_weight``
    is passed unchanged. A scale whose weight is 0 is not computed (as nnU-Net; its output gets no
    gradient). If the wrapped loss has a ``weight_fn`` and no ``weight`` is given, the map is built once
    from the full-resolution target and area-averaged like a given one.

    ``skeleton`` (for a loss whose ``forward`` takes a ``skeleton`` keyword, such as
    :class:`voxweight.losses.skeleton_compound.DiceCESkeletonRecall`) is resampled by ``skeleton_mode`` and
    passed as ``skeleton=`` at each scale. ``"max"`` (the default) keeps a coarse voxel on the skeleton if any
    fine voxel it covers is: every skeleton voxel survives, and a 26-connected skeleton stays connected
    (``"nearest"`` drops a one-voxel-thick tube that misses the sampled voxels). Max pooling a one-hot
    ``[N, C, *spatial]`` skeleton keeps each class where its tube touches a block; ids ``[N, 1, *spatial]``
    keep the largest id where two classes' tubes share a block. The reference (MIC-DKFZ/Skeleton-Recall), as
    its code reads, downsamples only the segmentation: its skeleton list has one (full-resolution) entry, so
    its wrapper's ``zip`` scores the full-resolution output alone, for all three terms.

    Differences from MONAI's ``DeepSupervisionLoss``: factors must be integers (MONAI interpolates to any
    size), outputs keep their dtype (MONAI casts to float32), ``scale_weights`` must have one weight per
    output (MONAI truncates a longer list), and integer targets work (``F.interpolate`` rejects them).

    Args:
        loss: the loss at each scale: any module called as ``loss(input, target, weight=None, *,
            sample_weight=None, mask=None)`` (``VoxelWeightedBCE``, ``VoxelWeightedCE``, ...), held as a
            submodule (it follows ``.to()`` and ``state_dict``).
        scale_weights: ``"nnunet"`` (``2^-i``, the coarsest 0, normalised to sum 1; one output: ``[1]``),
            ``"monai"`` (``max(2^-i, 1/16)``, MONAI's ``"exp"`` mode, not normalised), or a sequence of
            non-negative numbers, not all zero, one per output, used as given.
        target_mode: ``"nearest"`` (hard labels), ``"area"`` (soft targets, floating point) or ``"max"``.
        skeleton_mode: how ``skeleton`` is resampled: ``"max"``, ``"nearest"`` or ``"area"`` (floating point).

    Raises:
        TypeError: for a ``loss`` that is not an ``nn.Module``, or a ``scale_weights`` of the wrong type.
        ValueError: for an unknown ``scale_weights``, ``target_mode`` or ``skeleton_mode`` (with "did you mean"),
            or negative, non-finite or all-zero scale weights.

    Shape:
        - outputs: a tensor or a list of tensors ``[N, C, *spatial_i]``, same N and C, each ``spatial_i``
          dividing the target's spatial size.
        - target: as the wrapped loss takes it at full resolution (``[N, C, *spatial]``, or class indices).
        - weight, mask: as the wrapped loss takes them, each spatial axis the target's size or 1.
        - skeleton: the target's spatial size (ids ``[N, *spatial]`` / ``[N, 1, *spatial]`` or ``[N, C, *spatial]``).
        - output: what the wrapped loss returns (a scalar when it reduces).

    Example:
        >>> from voxweight import VoxelWeightedBCE
        >>> ds = DeepSupervision(VoxelWeightedBCE(reduction="weighted_mean"))
        >>> outputs = [torch.zeros(2, 1, 8, 8, 8), torch.zeros(2, 1, 4, 4, 4), torch.zeros(2, 1, 2, 2, 2)]
        >>> target, weight = torch.ones(2, 1, 8, 8, 8), torch.rand(2, 1, 8, 8, 8)
        >>> ds(outputs, target, weight)  # log(2) at every scale
        tensor(0.6931)
    """

    def __init__(self, loss: nn.Module, scale_weights: str | Sequence[float] = "nnunet", *,
                 target_mode: str = "nearest", skeleton_mode: str = "max") -> None:
        super().__init__()
        if not isinstance(loss, nn.Module):
            raise TypeError(f"loss: expected a loss module (an nn.Module such as VoxelWeightedBCE), got "
                            f"{describe(loss)}")
        self.loss = loss
        if isinstance(scale_weights, str):
            self.scale_weights: str | tuple[float, ...] = look_up_option("scale_weights", scale_weights,
                                                                        SCALE_WEIGHTS)
        else:
            self.scale_weights = _check_sequence(scale_weights)
        self.target_mode = look_up_option("target_mode", target_mode, TARGET_MODES)
        self.skeleton_mode = look_up_option("skeleton_mode", skeleton_mode, TARGET_MODES)

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor,
                weight: torch.Tensor | None = None, *, sample_weight: WeightLike | None = None,
                mask: torch.Tensor | None = None, skeleton: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted sum of the wrapped loss over the scales; see the class docstring."""
        outputs = _check_outputs(outputs)
        first = outputs[0]
        n_spatial = first.ndim - 2
        target = plain_tensor(check_tensor("target", target))
        if target.ndim not in (first.ndim - 1, first.ndim):
            raise ValueError(f"target: expected {first.ndim} dims (or {first.ndim - 1} for class indices), as "
                             f"outputs[0] with shape {list(first.shape)}, got shape {list(target.shape)}")
        if self.target_mode == "area" and not target.is_floating_point():
            raise TypeError(f"target: expected a floating-point target with target_mode='area' (use 'nearest' "
                            f"for class indices), got dtype {target.dtype}")
        full = tuple(target.shape[target.ndim - n_spatial:])
        if skeleton is not None:
            skeleton = self._checked_skeleton(skeleton, first, full)
        factors = [_factors(i, x, full) for i, x in enumerate(outputs)]
        weight_fn = getattr(self.loss, "weight_fn", None)
        if weight is None and callable(weight_fn):  # built once, at full resolution, then area-averaged
            with torch.no_grad():
                weight = weight_fn(target)
        weight = _spatial_map("weight", weight, first, full)
        if isinstance(weight, torch.Tensor) and not weight.is_floating_point():  # area needs floats
            weight = as_weight_tensor("weight", weight, like=first)
        if mask is not None:
            mask = _spatial_map("mask", check_mask(mask, first), first, full)
        full_maps = {"weight": weight, "mask": mask}
        total, pooled = None, {k: (v, [1] * n_spatial) for k, v in full_maps.items()}
        for i, s in enumerate(scale_weights_for(self.scale_weights, len(outputs))):
            if s == 0:
                continue
            f = factors[i]
            maps = {k: _pool_map(*pooled[k], full_maps[k], f, "area" if k == "weight" else "all") for k in pooled}
            pooled = {k: (maps[k], f) for k in maps}
            extra = {} if skeleton is None else {"skeleton": downsample(skeleton, f, self.skeleton_mode)}
            term = self.loss(outputs[i], downsample(target, f, self.target_mode), maps["weight"],
                             sample_weight=sample_weight, mask=maps["mask"], **extra)
            if total is not None and term.shape != total.shape:
                raise ValueError(f"loss: expected results of the same shape at every scale (a reduced loss), got "
                                 f"{list(total.shape)} and {list(term.shape)} (outputs[{i}])")
            total = s * term if total is None else total + s * term
        return total

    def _checked_skeleton(self, skeleton: Any, first: torch.Tensor, full: tuple[int, ...]) -> torch.Tensor:
        """The skeleton as a plain tensor of the target's spatial size, for a loss that takes one."""
        if "skeleton" not in inspect.signature(self.loss.forward).parameters:
            raise TypeError(f"skeleton: expected None for a loss whose forward takes no skeleton "
                            f"({type(self.loss).__name__}), got a tensor")
        skeleton = plain_tensor(check_tensor("skeleton", skeleton))
        spatial = tuple(skeleton.shape[skeleton.ndim - len(full):])
        if skeleton.ndim not in (first.ndim - 1, first.ndim) or spatial != full:
            raise ValueError(f"skeleton: expected the target's spatial size {list(full)} with {first.ndim} dims (or "
                             f"{first.ndim - 1} for class ids), got shape {list(skeleton.shape)}")
        if self.skeleton_mode == "area" and not skeleton.is_floating_point():
            raise TypeError(f"skeleton: expected a floating-point skeleton with skeleton_mode='area', got dtype "
                            f"{skeleton.dtype}")
        return skeleton

    def extra_repr(self) -> str:
        """The scale weights and the target and skeleton modes, for ``repr``."""
        return (f"scale_weights={self.scale_weights!r}, target_mode={self.target_mode!r}, "
                f"skeleton_mode={self.skeleton_mode!r}")


def _check_outputs(outputs: Any) -> list[torch.Tensor]:
    """A non-empty list of tensors with the same number of dims, batch size and channels."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if not isinstance(outputs, list | tuple) or not outputs:
        raise TypeError(f"outputs: expected a tensor or a non-empty list of tensors (full to coarse resolution), "
                        f"got {describe(outputs)}" + (" (empty)" if isinstance(outputs, list | tuple) else ""))
    for i, x in enumerate(outputs):
        check_tensor(f"outputs[{i}]", x)
    first = outputs[0]
    if first.ndim < 2:
        raise ValueError(f"outputs[0]: expected logits of shape [N, C, *spatial], got {list(first.shape)}")
    for i, x in enumerate(outputs[1:], start=1):
        if x.ndim != first.ndim or x.shape[:2] != first.shape[:2]:
            raise ValueError(f"outputs[{i}]: expected shape [{first.shape[0]}, {first.shape[1]}, ...] with "
                             f"{first.ndim - 2} spatial dims (the batch size and channels of outputs[0] with shape "
                             f"{list(first.shape)}), got {list(x.shape)}")
    return list(outputs)


def _factors(i: int, x: torch.Tensor, full: tuple[int, ...]) -> list[int]:
    """The integer pooling factor per spatial axis from the target's size ``full`` to ``x``'s."""
    size = tuple(x.shape[2:])
    if any(s < 1 or t % s for s, t in zip(size, full, strict=True)):
        raise ValueError(f"outputs[{i}]: expected spatial sizes the target's {list(full)} can be pooled to "
                         f"(integer factors), got {list(size)}")
    return [t // s for s, t in zip(size, full, strict=True)]


def _spatial_map(name: str, x: Any, first: torch.Tensor, full: tuple[int, ...]) -> Any:
    """A map (tensor) whose spatial axes are the target's size or 1; anything else goes to the loss unchanged."""
    if not isinstance(x, torch.Tensor) or x.ndim < len(full) + 1:
        return x
    x = plain_tensor(x)
    spatial = tuple(x.shape[x.ndim - len(full):])
    if any(s not in (1, t) for s, t in zip(spatial, full, strict=True)):
        raise ValueError(f"{name}: expected spatial sizes {list(full)} (the target's, full resolution) or 1, got "
                         f"shape {list(x.shape)} (outputs[0] has shape {list(first.shape)})")
    return x


def _pool_map(x: Any, done: list[int], full: Any, factors: list[int], mode: str) -> Any:
    """:func:`downsample` to ``factors`` of a spatial map ``x`` pooled by ``done`` already (or of ``full``).

    Block means of block means (and ands of ands) over nested blocks are exact, so a scale whose factors are
    multiples of the previous scale's pools that smaller map (each scale costs a fraction of the full map);
    other factors pool the full-resolution map. Anything but a spatial map is returned unchanged.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < len(factors) + 1:
        return x
    if any(f % d for f, d in zip(factors, done, strict=True)):
        x, done = full, [1] * len(factors)
    return downsample(x, [f // d for f, d in zip(factors, done, strict=True)], mode)
