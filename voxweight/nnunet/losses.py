r"""nnU-Net's Dice + CE with the CE weighted per voxel by a boundary map, at every deep-supervision scale.

nnU-Net (v2) trains ``sum_i a_i (Dice_i + CE_i)`` over its deep-supervision outputs ``i`` (its
``DeepSupervisionWrapper``, weights ``a_i`` halving per scale, the coarsest 0). :class:`BoundaryWeightedDiceCE`
keeps nnU-Net's own Dice term (the very module its trainer builds: ``batch_dice``, ``do_bg``, smoothing,
DDP gathering, the ignore label) and replaces the CE by

.. math::

    \mathrm{CE}^w_i = \frac{\sum_v w_i(v)\, \ell_i(v)}{D_i}, \qquad
    w_i = \mathrm{boundary\_weights}(y_i;\ \mathrm{mode}, w_0, \sigma, \mathrm{spacing}_i)

with ``l_i`` nnU-Net's voxel CE (softmax, labels) or BCE (sigmoid, regions), ``y_i`` the target at scale
``i`` and ``D_i`` nnU-Net's denominator (``reduction="mean"``: the number of counted voxels, so that
``w = 1`` gives nnU-Net's loss exactly) or the sum of the map over them (``"weighted_mean"``). The map is
built from each scale's target on the batch's device (:func:`voxweight.maps.boundary_weights`,
``backend="auto"``: torch on a GPU), with ``spacing_i`` = the configuration's spacing divided by the scale,
so ``sigma`` means the same physical width at every scale. Ignore-label voxels count as background in the
map and in no term, as in nnU-Net. This module needs no nnU-Net import: the trainers hand it the loss
nnU-Net built (:func:`stock_parts`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from voxweight._validate import check_positive_number, look_up_option
from voxweight.losses import VoxelWeightedCE
from voxweight.maps import BOUNDARY_MODES, boundary_weights

__all__ = ["CE_REDUCTIONS", "BoundaryWeightedDiceCE", "NnunetScaleLoss", "nnunet_targets", "region_ce", "stock_parts"]

CE_REDUCTIONS = ("mean", "weighted_mean")
_FEW_OBJECTS = r"boundary_weights: mode='unet' found"  # patches with < 2 objects are common: not worth a warning


def stock_parts(loss: nn.Module) -> tuple[nn.Module, tuple[float, ...] | None]:
    """nnU-Net's single-scale loss and its deep-supervision weights (None without deep supervision).

    Example:
        >>> inner = nn.MSELoss()
        >>> stock_parts(inner) == (inner, None)
        True
    """
    factors = getattr(loss, "weight_factors", None)
    if factors is not None and isinstance(getattr(loss, "loss", None), nn.Module):
        return loss.loss, tuple(float(f) for f in factors)
    return loss, None


def nnunet_targets(target: torch.Tensor, *, regions: bool, ignore_label: int | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """nnU-Net's target split as its losses read it: ``(labels, mask)``.

    Labels: class ids ``[B, 1, *spatial]`` (int64, ignore-label voxels set to 0); regions: the region channels
    as bool ``[B, R, *spatial]`` (the last channel dropped when it is the ignore channel). ``mask`` is bool
    ``[B, 1, *spatial]``, True where the loss counts, or None without an ignore label.

    Example:
        >>> labels, mask = nnunet_targets(torch.tensor([[[0.0, 1.0, 2.0]]]), regions=False, ignore_label=2)
        >>> labels.tolist(), mask.tolist()
        ([[[0, 1, 0]]], [[[True, True, False]]])
    """
    if regions:
        if ignore_label is None:
            return target.bool(), None
        return target[:, :-1].bool(), ~target[:, -1:].bool()
    ids = target.long()
    if ignore_label is None:
        return ids, None
    mask = ids != ignore_label
    return torch.where(mask, ids, 0), mask


class NnunetScaleLoss(nn.Module):
    """Base of the voxweight nnU-Net losses: ``sum_i a_i L(x_i, y_i; spacing_i)`` over deep-supervision outputs.

    Subclasses implement :meth:`scale_loss` (and may override :meth:`prepare`, called once per batch with the
    targets of every scale). Lists of outputs and targets (deep supervision) or single tensors are accepted.

    Args:
        stock: the single-scale loss nnU-Net built (``DC_and_CE_loss`` or ``DC_and_BCE_loss``).
        weight_factors: nnU-Net's deep-supervision weights ``a_i`` (None: one output).
        spacings: the voxel spacing at each scale (one tuple per output).
        regions: nnU-Net's ``label_manager.has_regions``.
        ignore_label: nnU-Net's ``label_manager.ignore_label``.

    Shape:
        - outputs: ``[B, C, *spatial_i]`` per scale; targets: ``[B, 1 or R(+1), *spatial_i]``; output: scalar.
    """

    def __init__(self, stock: nn.Module, weight_factors: Sequence[float] | None,
                 spacings: Sequence[Sequence[float]], *, regions: bool, ignore_label: int | None) -> None:
        super().__init__()
        self.stock = stock
        self.weight_factors = None if weight_factors is None else tuple(float(a) for a in weight_factors)
        self.spacings = tuple(tuple(float(s) for s in sp) for sp in spacings)
        levels = 1 if self.weight_factors is None else len(self.weight_factors)
        if len(self.spacings) != levels:
            raise ValueError(f"spacings: expected one spacing per deep-supervision output ({levels}), got "
                             f"{len(self.spacings)}")
        self.regions, self.ignore_label = bool(regions), ignore_label

    def forward(self, output: torch.Tensor | Sequence[torch.Tensor],
                target: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """``sum_i a_i scale_loss(x_i, y_i, spacing_i)``, outputs whose ``a_i`` is 0 skipped (as nnU-Net)."""
        outputs = [output] if isinstance(output, torch.Tensor) else list(output)
        targets = [target] if isinstance(target, torch.Tensor) else list(target)
        if len(outputs) != len(targets) or len(outputs) != len(self.spacings):
            raise ValueError(f"output, target: expected {len(self.spacings)} deep-supervision scales each, got "
                             f"{len(outputs)} outputs and {len(targets)} targets")
        factors = self.weight_factors or (1.0,)
        extras = self.prepare(targets)
        terms = [a * self.scale_loss(x, y, sp, extra) for a, x, y, sp, extra in
                 zip(factors, outputs, targets, self.spacings, extras, strict=True) if a != 0]
        return torch.stack(terms).sum() if len(terms) > 1 else terms[0]

    def prepare(self, targets: list[torch.Tensor]) -> list[Any]:
        """Per-batch data shared by the scales (default: nothing), one entry per scale."""
        return [None] * len(targets)

    def scale_loss(self, x: torch.Tensor, y: torch.Tensor, spacing: tuple[float, ...], extra: Any) -> torch.Tensor:
        """The loss at one scale (subclasses)."""
        raise NotImplementedError


class BoundaryWeightedDiceCE(NnunetScaleLoss):
    """nnU-Net's Dice + a CE weighted per voxel by :func:`voxweight.maps.boundary_weights`; see the module docstring.

    Args:
        stock, weight_factors, spacings, regions, ignore_label: as for :class:`NnunetScaleLoss`.
        mode: ``"unet"`` (Ronneberger's separation map) or ``"distance"`` (an interface band).
        w0: the bonus height; sigma: its width, in the units of ``spacings`` (mm, or voxels with unit spacing).
        reduction: ``"mean"`` (nnU-Net's denominator) or ``"weighted_mean"`` (the map's sum).
        backend: :func:`~voxweight.maps.boundary_weights`'s backend (``"auto"``: torch off the CPU).

    Shape:
        - as for :class:`NnunetScaleLoss`.

    Example:
        >>> class Stock(nn.Module):  # stands for nnU-Net's DC_and_CE_loss: a Dice module and weights
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.dc, self.weight_ce, self.weight_dice = (lambda x, y, loss_mask=None: 0.0), 1.0, 0.0
        >>> loss = BoundaryWeightedDiceCE(Stock(), None, [(1.0, 1.0)], regions=False, ignore_label=None, w0=0.0)
        >>> x, y = torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 4, 4)
        >>> round(loss(x, y).item(), 4)  # w0 = 0: the plain CE, log 2
        0.6931
    """

    def __init__(self, stock: nn.Module, weight_factors: Sequence[float] | None,
                 spacings: Sequence[Sequence[float]], *, regions: bool, ignore_label: int | None,
                 mode: str = "unet", w0: float = 10.0, sigma: float = 5.0, reduction: str = "mean",
                 backend: str = "auto") -> None:
        super().__init__(stock, weight_factors, spacings, regions=regions, ignore_label=ignore_label)
        self.mode = look_up_option("mode", mode, BOUNDARY_MODES)
        self.w0, self.sigma = check_positive_number("w0", w0, allow_zero=True), check_positive_number("sigma", sigma)
        self.reduction = look_up_option("reduction", reduction, CE_REDUCTIONS)
        self.backend = backend
        self.ce = VoxelWeightedCE(ignore_index=ignore_label, reduction=reduction)

    def voxel_map(self, labels: torch.Tensor, spacing: tuple[float, ...]) -> torch.Tensor:
        """The boundary map of ``labels`` (class ids, or region channels each its own binary map), no gradient."""
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_FEW_OBJECTS, category=UserWarning)
            return boundary_weights(labels if self.regions else labels.to(torch.int32), mode=self.mode, w0=self.w0,
                                    sigma=self.sigma, spacing=spacing, spatial_dims=len(spacing),
                                    multiclass=not self.regions, backend=self.backend)

    def scale_loss(self, x: torch.Tensor, y: torch.Tensor, spacing: tuple[float, ...], extra: Any) -> torch.Tensor:
        """nnU-Net's ``weight_dice * Dice + weight_ce * CE^w`` at one scale."""
        labels, mask = nnunet_targets(y, regions=self.regions, ignore_label=self.ignore_label)
        stock = self.stock
        dice = stock.dc(x, labels, loss_mask=mask) if stock.weight_dice != 0 else 0
        if stock.weight_ce == 0:
            return stock.weight_dice * dice
        w = self.voxel_map(labels, spacing)
        if self.regions:
            ce = region_ce(x, labels, w, mask, self.reduction)
        else:  # class ids with the ignore label kept: VoxelWeightedCE leaves those voxels out (0 if all are)
            ce = self.ce(x, y.long() if mask is not None else labels, w)
        return stock.weight_ce * ce + stock.weight_dice * dice


def region_ce(x: torch.Tensor, regions: torch.Tensor, w: torch.Tensor, mask: torch.Tensor | None,
              reduction: str) -> torch.Tensor:
    """nnU-Net's region BCE with each element weighted by ``w``, over nnU-Net's denominator (or ``w``'s sum).

    nnU-Net divides the masked BCE sum by the number of counted *voxels* (``mask.sum()``, ``mask`` one channel)
    and the unmasked one by the number of elements; ``"weighted_mean"`` replaces each count by the map's sum
    (per voxel: its mean over the region channels).

    Shape:
        - x, regions, w: ``[B, R, *spatial]``; mask: ``[B, 1, *spatial]`` or None; output: scalar.

    Example:
        >>> x, t = torch.zeros(1, 2, 3), torch.ones(1, 2, 3, dtype=torch.bool)
        >>> round(region_ce(x, t, torch.ones(1, 2, 3), None, "mean").item(), 4)
        0.6931
    """
    losses = F.binary_cross_entropy_with_logits(x.float(), regions.float(), reduction="none") * w
    if mask is None:
        den = w.sum() if reduction == "weighted_mean" else torch.tensor(float(losses.numel()), device=x.device)
        return losses.sum() / den.clamp_min(1e-8)
    losses = losses * mask
    den = (w * mask).mean(1).sum() if reduction == "weighted_mean" else mask.sum()
    return losses.sum() / den.clamp_min(1e-8)
