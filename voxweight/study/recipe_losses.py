r"""The losses of the study's recipes: ``loss(logits, label, instances, step) -> scalar``, maps from the batch.

A recipe's loss gets the network's logits ``[N, 1, *spatial]``, the crops' label (float 0/1, the same shape),
their instance map (int64, or None) and the 0-based optimiser step. Whatever the loss needs beyond the label
(a weight map, a signed distance map, a tubed skeleton) is built here from the batch's label, without gradient,
on the label's device: :func:`voxweight.maps.boundary_weights` and :func:`voxweight.maps.class_signed_distance`
run with :data:`MAP_BACKEND` ``"auto"``, i.e. their exact torch EDT for a tensor off the CPU (no host copy) and
``edt`` for a CPU tensor (already on the host; 3-5x faster there than the torch EDT on a study crop, the same
maps to float32 precision); :func:`voxweight.maps.tubed_skeleton` has no torch path (scikit-image thins on the
CPU), so the skeleton goes to the host and back. Maps are of the hard label ``label > 0.5``.

* :class:`MappedLoss`: ``region(x, t, w)`` with ``w = weight_map(t, instances)`` (or None).
* :class:`ScheduledBoundaryLoss`: ``a_e * region + b_e * L_B(sigmoid(x), phi_t)`` (Kervadec et al. 2019),
  ``(a_e, b_e)`` from a :class:`voxweight.losses.BoundaryLossSchedule` at epoch ``e = floor(step * E / steps)``.
* :class:`PlusTerm`: ``region + lambda * term(x, target_fn(t))`` (Skeleton Recall, clDice).

Every call checks its arguments' metadata (shapes, dtypes, devices, the step) with :func:`check_batch`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from voxweight._validate import check_positive_int, describe
from voxweight.losses import BoundaryLossSchedule, boundary_loss
from voxweight.maps import boundary_weights, class_signed_distance, tubed_skeleton

__all__ = ["MAP_BACKEND", "MappedLoss", "PlusTerm", "RecipeLoss", "Region", "ScheduledBoundaryLoss", "WeightMap",
           "check_batch", "distance_map", "signed_distance_target", "skeleton_target", "unet_map"]

Region = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]  # (logits, label, weight)
WeightMap = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]  # (label, instances) -> map
MAP_BACKEND = "auto"  # the torch EDT on an accelerator, edt on the CPU
_FEW_OBJECTS = "boundary_weights: mode='unet' found"  # the start of its "fewer than two objects" warning


class RecipeLoss(Protocol):
    """What a recipe builds: ``loss(logits, label, instances, step) -> scalar Tensor`` (see the module docstring)."""

    def __call__(self, logits: torch.Tensor, label: torch.Tensor, instances: torch.Tensor | None,
                 step: int) -> torch.Tensor:
        """The loss of one batch at optimiser step ``step`` (0-based)."""
        ...


def check_batch(logits: object, label: object, instances: object, step: object, spatial_dims: int) -> None:
    """Check a recipe loss's arguments: shapes, dtypes, devices and the step.

    Raises:
        TypeError: for non-tensors, integer logits, float instances or a non-integer step.
        ValueError: for shapes other than ``[N, 1, *spatial]`` with ``spatial_dims`` axes, a label or instance
            map of another shape or device, or a negative step, naming the argument.

    Shape:
        - logits, label, instances: ``[N, 1, *spatial]``.

    Example:
        >>> check_batch(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4), None, 0, 1)
        Traceback (most recent call last):
        ...
        ValueError: logits: expected [N, 1, *spatial] with 1 spatial axes (one sigmoid channel), got [1, 2, 4]
    """
    for name, value in (("logits", logits), ("label", label)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {describe(value)}")
    shape = list(logits.shape)  # type: ignore[union-attr]
    if len(shape) != spatial_dims + 2 or shape[1] != 1:
        raise ValueError(f"logits: expected [N, 1, *spatial] with {spatial_dims} spatial axes (one sigmoid "
                         f"channel), got {shape}")
    others = (("label", label), ("instances", instances)) if instances is not None else (("label", label),)
    for name, value in others:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor, got {describe(value)}")
        if list(value.shape) != shape or value.device != logits.device:  # type: ignore[union-attr]
            raise ValueError(f"{name}: expected the logits' shape {shape} on {logits.device}, got "  # type: ignore
                             f"{list(value.shape)} on {value.device}")
    if instances is not None and (instances.is_floating_point() or instances.dtype == torch.bool):  # type: ignore
        raise TypeError(f"instances: expected integer instance ids, got dtype {instances.dtype}")  # type: ignore
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"step: expected an integer >= 0 (the 0-based optimiser step), got {describe(step)}")
    if step < 0:
        raise ValueError(f"step: expected an integer >= 0 (the 0-based optimiser step), got {step}")


def unet_map(label: torch.Tensor, instances: torch.Tensor | None, *, spacing: Sequence[float], w0: float,
             sigma: float) -> torch.Tensor:
    r"""The U-Net separation map ``1 + w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` of each crop (:data:`MAP_BACKEND`).

    Objects are the ids of ``instances`` when given, else the connected components of ``label > 0.5``. A crop
    with fewer than two objects has nothing to separate and gets 1 everywhere; that is common for crops, so
    :func:`voxweight.maps.boundary_weights`' warning about it is silenced here (its other warnings are not).

    Shape:
        - label, instances: ``[N, 1, *spatial]``; output: the same, float32.

    Example:
        >>> t = torch.zeros(1, 1, 4, 1, 1); t[0, 0, [0, 3]] = 1  # two objects, two background voxels between
        >>> unet_map(t, None, spacing=(1.0, 1.0, 1.0), w0=2.0, sigma=1.0).flatten().round(decimals=4)
        tensor([1.0000, 1.0222, 1.0222, 1.0000])
    """
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_FEW_OBJECTS, category=UserWarning)
        return boundary_weights(label > 0.5, mode="unet", w0=w0, sigma=sigma, spacing=tuple(spacing),
                                instances=instances, spatial_dims=len(spacing), backend=MAP_BACKEND)


def distance_map(label: torch.Tensor, instances: torch.Tensor | None, *, spacing: Sequence[float], w0: float,
                 sigma: float) -> torch.Tensor:
    r"""The distance band ``1 + w0 exp(-d^2 / (2 sigma^2))`` on both sides of each crop's interface.

    ``instances`` is not used (the band follows the foreground/background interface). Empty or full crops: 1.

    Shape:
        - label: ``[N, 1, *spatial]``; output: the same, float32.

    Example:
        >>> t = torch.zeros(1, 1, 4, 1, 1); t[0, 0, 2:] = 1
        >>> distance_map(t, None, spacing=(1.0, 1.0, 1.0), w0=2.0, sigma=1.0).flatten().round(decimals=4)
        tensor([1.2707, 2.2131, 2.2131, 1.2707])
    """
    with torch.no_grad():
        return boundary_weights(label > 0.5, mode="distance", w0=w0, sigma=sigma, spacing=tuple(spacing),
                                spatial_dims=len(spacing), backend=MAP_BACKEND)


def signed_distance_target(label: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """``phi_t``: the level-set signed distance of ``label > 0.5`` in the units of ``spacing`` (0 without boundary).

    Shape:
        - label: ``[N, 1, *spatial]``; output: the same, float32.

    Example:
        >>> t = torch.tensor([[[[[0.0]], [[1.0]], [[1.0]]]]])
        >>> signed_distance_target(t, (2.0, 1.0, 1.0)).flatten()
        tensor([ 2., -2., -4.])
    """
    with torch.no_grad():
        return class_signed_distance(label > 0.5, spacing=tuple(spacing), spatial_dims=len(spacing),
                                     backend=MAP_BACKEND)


def skeleton_target(label: torch.Tensor, tube_radius: int) -> torch.Tensor:
    """The tubed skeleton of ``label > 0.5`` (:func:`voxweight.maps.tubed_skeleton`, on the CPU) as float 0/1.

    Shape:
        - label: ``[N, 1, *spatial]`` (3 spatial axes); output: the same, on the label's device.

    Example:
        >>> t = torch.zeros(1, 1, 7, 3, 3); t[0, 0, 1:6, 1, 1] = 1
        >>> skeleton_target(t, 0).sum().item()
        5.0
    """
    with torch.no_grad():
        return tubed_skeleton(label > 0.5, tube_radius=tube_radius, spatial_dims=label.ndim - 2).float()


class MappedLoss:
    """``region(logits, label, weight)``, with ``weight = weight_map(label, instances)`` built without gradient.

    Args:
        region: a voxweight loss called as ``region(logits, label, weight)`` (``weight`` None without a map).
        weight_map: ``(label, instances) -> map`` (e.g. :func:`unet_map` with its knobs bound), or None.
        spatial_dims: the crops' spatial axes.

    Shape:
        - logits, label, instances: ``[N, 1, *spatial]``; output: scalar.

    Example:
        >>> from voxweight.losses import VoxelWeightedBCE
        >>> loss = MappedLoss(VoxelWeightedBCE())
        >>> round(loss(torch.zeros(1, 1, 2, 2, 2), torch.ones(1, 1, 2, 2, 2), None, 0).item(), 6)  # log 2
        0.693147
    """

    def __init__(self, region: Region, weight_map: WeightMap | None = None, *, spatial_dims: int = 3) -> None:
        self.region, self.weight_map = region, weight_map
        self.spatial_dims = check_positive_int("spatial_dims", spatial_dims)

    def __call__(self, logits: torch.Tensor, label: torch.Tensor, instances: torch.Tensor | None,
                 step: int) -> torch.Tensor:
        """The loss of one batch (``step`` is not used)."""
        check_batch(logits, label, instances, step, self.spatial_dims)
        weight = None if self.weight_map is None else self.weight_map(label, instances)
        return self.region(logits, label, weight)


class ScheduledBoundaryLoss:
    r"""``a_e * region + b_e * L_B``: a region loss with Kervadec's boundary loss on a per-epoch schedule.

    ``L_B = mean(sigmoid(x) * phi_t)`` (:func:`voxweight.losses.boundary_loss`, sigmoid, the one channel kept),
    ``phi_t`` from :func:`signed_distance_target` in mm. The budget of ``total_steps`` optimiser steps is cut
    into ``epochs`` equal parts, step ``s`` lying in epoch ``e = floor(s * epochs / total_steps)`` (at most
    ``epochs - 1``), and ``(a_e, b_e) = schedule.weights(e)``: the schedule moves within the budget. While
    ``b_e = 0`` the boundary term is not computed.

    Args:
        region: the region loss (a :class:`MappedLoss`).
        schedule: the weights per epoch (its own :attr:`~voxweight.losses.BoundaryLossSchedule.epoch` is unused).
        spacing: mm per spatial axis.
        total_steps: the training budget, >= 1.
        epochs: parts of the budget, >= 1.

    Shape:
        - logits, label: ``[N, 1, *spatial]``; output: scalar.

    Example:
        >>> from voxweight.losses import VoxelWeightedBCE
        >>> loss = ScheduledBoundaryLoss(MappedLoss(VoxelWeightedBCE()), BoundaryLossSchedule(step=0.1),
        ...                              (1.0, 1.0, 1.0), total_steps=100, epochs=10)
        >>> loss.epoch(0), loss.epoch(99), [round(w, 6) for w in loss.weights(99)]
        (0, 9, [0.1, 0.9])
    """

    def __init__(self, region: MappedLoss, schedule: BoundaryLossSchedule, spacing: Sequence[float], *,
                 total_steps: int, epochs: int) -> None:
        self.region, self.schedule, self.spacing = region, schedule, tuple(spacing)
        self.total_steps = check_positive_int("total_steps", total_steps)
        self.epochs = check_positive_int("epochs", epochs)

    def epoch(self, step: int) -> int:
        """The schedule's epoch of optimiser step ``step``: ``min(floor(step * epochs / total_steps), epochs - 1)``."""
        return min(step * self.epochs // self.total_steps, self.epochs - 1)

    def weights(self, step: int) -> tuple[float, float]:
        """``(region_weight, boundary_weight)`` at optimiser step ``step``."""
        return self.schedule.weights(self.epoch(step))

    def __call__(self, logits: torch.Tensor, label: torch.Tensor, instances: torch.Tensor | None,
                 step: int) -> torch.Tensor:
        """The loss of one batch at optimiser step ``step``."""
        check_batch(logits, label, instances, step, self.region.spatial_dims)
        a, b = self.weights(step)
        loss = a * self.region(logits, label, instances, step)
        if b == 0:
            return loss
        phi = signed_distance_target(label, self.spacing)
        return loss + b * boundary_loss(logits, phi, activation="sigmoid", include_background=True)


class PlusTerm:
    """``region + weight * term(logits, target_fn(label))``: a region loss plus a target-derived loss.

    Args:
        region: the region loss (a :class:`MappedLoss`).
        term: a voxweight loss called as ``term(logits, target)`` (Skeleton Recall, clDice).
        weight: the term's weight, >= 0.
        target_fn: ``label -> target`` of the term (e.g. :func:`skeleton_target`), without gradient; None: the label.

    Shape:
        - logits, label: ``[N, 1, *spatial]``; output: scalar.

    Example:
        >>> from voxweight.losses import VoxelWeightedBCE, VoxelWeightedClDice
        >>> loss = PlusTerm(MappedLoss(VoxelWeightedBCE()), VoxelWeightedClDice(), 0.5)
        >>> bool(loss(torch.zeros(1, 1, 4, 4, 4), torch.ones(1, 1, 4, 4, 4), None, 0).isfinite())
        True
    """

    def __init__(self, region: MappedLoss, term: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], weight: float,
                 target_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight: expected a finite number >= 0, got {describe(weight)}")
        self.region, self.term, self.weight, self.target_fn = region, term, float(weight), target_fn

    def __call__(self, logits: torch.Tensor, label: torch.Tensor, instances: torch.Tensor | None,
                 step: int) -> torch.Tensor:
        """The loss of one batch (``step`` is not used)."""
        loss = self.region(logits, label, instances, step)  # checks the batch
        if not self.weight:
            return loss
        with torch.no_grad():
            target = label if self.target_fn is None else self.target_fn(label)
        return loss + self.weight * self.term(logits, target)
