r"""nnU-Net's Dice + CE plus a voxweight term at every deep-supervision scale: Skeleton Recall, boundary loss.

* :class:`SkeletonRecallDiceCE`: ``DiceCE_i + lambda SRec(x_i, s_i)`` (Kirchhoff et al., ECCV 2024). The
  tubed skeleton ``s`` is built in the train step (inside the loss, once per batch) from the full-resolution
  target with :func:`voxweight.maps.tubed_skeleton` (scikit-image on the host: a GPU target goes there and
  back), then brought to each coarser scale with nnU-Net's own target resampling (``nearest-exact``), as the
  reference trainer's data pipeline does. Ignore-label voxels count in no term, and the recall's ``batch``
  follows nnU-Net's ``batch_dice``. Labels only (softmax): regions raise, as in the reference.
* :class:`BoundaryLossDiceCE`: ``a_e DiceCE_i + b_e BL(x_i, phi_i)`` (Kervadec et al. 2019), ``phi_i`` the
  per-class signed distances of the target at scale ``i`` (:func:`voxweight.maps.class_signed_distance`,
  on the batch's device, in the units of the scale's spacing), ``(a_e, b_e)`` the epoch's weights of a
  :class:`voxweight.losses.BoundaryLossSchedule`. Regions use a sigmoid and one map per region.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from voxweight.losses import BoundaryLoss, BoundaryLossSchedule, SkeletonRecallLoss
from voxweight.maps import class_signed_distance, tubed_skeleton
from voxweight.nnunet.losses import NnunetScaleLoss, nnunet_targets

__all__ = ["BoundaryLossDiceCE", "SkeletonRecallDiceCE", "scale_skeletons"]


def scale_skeletons(skeleton: torch.Tensor, targets: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The full-resolution skeleton at each target's size, resampled as nnU-Net resamples targets.

    Shape:
        - skeleton: ``[B, 1, *spatial_0]``; targets: ``[B, 1, *spatial_i]``; output: ``[B, 1, *spatial_i]`` each.

    Example:
        >>> s = torch.arange(4).reshape(1, 1, 4)
        >>> [t.tolist() for t in scale_skeletons(s, [torch.zeros(1, 1, 4), torch.zeros(1, 1, 2)])]
        [[[[0, 1, 2, 3]]], [[[1, 3]]]]
    """
    out = []
    for t in targets:
        same = tuple(t.shape[2:]) == tuple(skeleton.shape[2:])
        out.append(skeleton if same else
                   F.interpolate(skeleton.float(), size=tuple(t.shape[2:]), mode="nearest-exact").to(skeleton.dtype))
    return out


class SkeletonRecallDiceCE(NnunetScaleLoss):
    """nnU-Net's Dice + CE plus ``weight_srec`` Skeleton Recall; see the module docstring.

    Args:
        stock, weight_factors, spacings, ignore_label: as for :class:`~voxweight.nnunet.losses.NnunetScaleLoss`.
        regions: must be False (the recall of a softmax over classes; the reference has no region variant).
        weight_srec: the recall term's weight (the reference's 1).
        batch: one recall per class over the batch (nnU-Net's ``batch_dice``).
        tube_radius: the tube's dilations around the skeleton (the reference's 2).

    Raises:
        ValueError: for ``regions=True``.

    Shape:
        - outputs: ``[B, C, *spatial_i]``; targets: ``[B, 1, *spatial_i]``; output: scalar.

    Example:
        >>> stock = lambda x, y: torch.zeros(())  # stands for nnU-Net's DC_and_CE_loss
        >>> loss = SkeletonRecallDiceCE(stock, None, [(1.0, 1.0)], regions=False, ignore_label=None)
        >>> y = torch.zeros(1, 1, 7, 7)
        >>> y[0, 0, 3, 1:6] = 1  # a bar: its skeleton is itself
        >>> x = torch.zeros(1, 2, 7, 7)  # softmax 1/2 everywhere: the recall is 1/2
        >>> round(loss(x, y).item(), 4)
        0.5
    """

    def __init__(self, stock: nn.Module, weight_factors: Sequence[float] | None,
                 spacings: Sequence[Sequence[float]], *, regions: bool, ignore_label: int | None,
                 weight_srec: float = 1.0, batch: bool = False, tube_radius: int = 2) -> None:
        if regions:
            raise ValueError("regions: Skeleton Recall scores a softmax over classes; region-based (sigmoid) "
                             "training is not supported (nor by the reference trainer). Train with labels.")
        super().__init__(stock, weight_factors, spacings, regions=False, ignore_label=ignore_label)
        self.weight_srec, self.tube_radius = float(weight_srec), tube_radius
        self.srec = SkeletonRecallLoss(batch=batch, smooth=1e-5)

    def prepare(self, targets: list[torch.Tensor]) -> list[Any]:
        """The tubed skeleton of the full-resolution target (ids), at every scale."""
        labels, _ = nnunet_targets(targets[0], regions=False, ignore_label=self.ignore_label)
        with torch.no_grad():
            skeleton = tubed_skeleton(labels.to(torch.int32), tube_radius=self.tube_radius, multiclass=True,
                                      spatial_dims=labels.ndim - 2)
        return scale_skeletons(skeleton.long(), targets)

    def scale_loss(self, x: torch.Tensor, y: torch.Tensor, spacing: tuple[float, ...], extra: Any) -> torch.Tensor:
        """nnU-Net's Dice + CE plus ``weight_srec`` times the recall of this scale's skeleton."""
        loss = self.stock(x, y)
        if not self.weight_srec:
            return loss
        _, mask = nnunet_targets(y, regions=False, ignore_label=self.ignore_label)
        return loss + self.weight_srec * self.srec(x, extra, mask=mask)


class BoundaryLossDiceCE(NnunetScaleLoss):
    """``a_e`` (nnU-Net's Dice + CE) ``+ b_e`` boundary loss, with the schedule's weights; see the module docstring.

    Args:
        stock, weight_factors, spacings, regions, ignore_label: as for
            :class:`~voxweight.nnunet.losses.NnunetScaleLoss`.
        schedule: the per-epoch weights (the trainer sets its ``epoch``).
        backend: :func:`~voxweight.maps.class_signed_distance`'s backend (``"auto"``: torch on a GPU).

    Shape:
        - outputs: ``[B, C, *spatial_i]``; targets: ``[B, 1 or R(+1), *spatial_i]``; output: scalar.

    Example:
        >>> stock = lambda x, y: torch.ones(())  # stands for nnU-Net's DC_and_CE_loss
        >>> schedule = BoundaryLossSchedule(step=0.25)
        >>> loss = BoundaryLossDiceCE(stock, None, [(1.0,)], regions=False, ignore_label=None, schedule=schedule)
        >>> x, y = torch.zeros(1, 2, 4), torch.tensor([[[0.0, 0.0, 1.0, 1.0]]])
        >>> schedule.epoch = 2  # weights (0.5, 0.5); the boundary loss is mean(1/2 * [2, 1, -1, -2]) = 0
        >>> loss(x, y).item()
        0.5
    """

    def __init__(self, stock: nn.Module, weight_factors: Sequence[float] | None,
                 spacings: Sequence[Sequence[float]], *, regions: bool, ignore_label: int | None,
                 schedule: BoundaryLossSchedule, backend: str = "auto") -> None:
        super().__init__(stock, weight_factors, spacings, regions=regions, ignore_label=ignore_label)
        self.schedule, self.backend = schedule, backend
        self.boundary = BoundaryLoss(activation="sigmoid" if regions else "softmax", include_background=regions)

    def sdm(self, labels: torch.Tensor, classes: int, spacing: tuple[float, ...]) -> torch.Tensor:
        """Signed distances ``[B, C, *spatial]``: per class of the ids, or per region channel."""
        dims = len(spacing)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if self.regions:
                return class_signed_distance(labels, spacing=spacing, spatial_dims=dims, backend=self.backend)
            return class_signed_distance(labels[:, 0].to(torch.int32), num_classes=classes, multiclass=True,
                                         spacing=spacing, spatial_dims=dims, backend=self.backend)

    def scale_loss(self, x: torch.Tensor, y: torch.Tensor, spacing: tuple[float, ...], extra: Any) -> torch.Tensor:
        """``a_e`` nnU-Net's loss ``+ b_e`` boundary loss at one scale (``b_e = 0``: the boundary term is skipped)."""
        a, b = self.schedule.weights()
        region = self.stock(x, y)
        if b == 0:
            return a * region
        labels, mask = nnunet_targets(y, regions=self.regions, ignore_label=self.ignore_label)
        phi = self.sdm(labels, x.shape[1], spacing).to(x.dtype)
        return a * region + b * self.boundary(x, phi, mask=mask)
