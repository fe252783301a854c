"""Training one recipe for one seed: the same network, crops, augmentation and budget for every recipe.

Every run of a study trains :func:`study_network` (a small MONAI U-Net, seeded) with Adam for ``steps``
optimiser steps. Each step takes one training volume (drawn by the seed) and ``batch_size`` crops of
``roi_size`` from it with MONAI's ``RandCropByPosNegLabeld`` (``pos = neg = 1``, the image, the label and the
instance map cropped together) and random flips along every axis. The crops, flips and volume order depend on
the seed only, so two recipes of one seed see exactly the same batches: their difference is the recipe's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from voxweight.study.recipes import Recipe, RecipeContext

__all__ = ["LEARNING_RATE", "CropSampler", "normalise", "study_network", "train_recipe"]

LEARNING_RATE = 3e-3  # Adam's, for every recipe

Progress = Callable[[int, int], None]


def normalise(image: np.ndarray) -> np.ndarray:
    """The image z-scored over its own voxels (a constant image becomes 0), float32.

    Example:
        >>> normalise(np.array([1.0, 3.0])).tolist()
        [-1.0, 1.0]
    """
    image = np.asarray(image, dtype=np.float32)
    std = float(image.std())
    return ((image - image.mean()) / (std if std > 0 else 1.0)).astype(np.float32)


def study_network(seed: int, *, channels: Sequence[int] = (8, 16, 32)) -> torch.nn.Module:
    """The study's network: a 3-D MONAI U-Net, 1 channel in and out, strides of 2, seeded.

    Crops and volumes of any size work (sliding-window inference pads); crop sizes divisible by
    ``2 ** (len(channels) - 1)`` avoid padding inside the network.

    Example:
        >>> study_network(0)(torch.zeros(1, 1, 16, 16, 8)).shape
        torch.Size([1, 1, 16, 16, 8])
    """
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    return UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=tuple(channels),
                strides=(2,) * (len(channels) - 1), num_res_units=1)


class CropSampler:
    """Seeded batches of pos/neg crops (MONAI ``RandCropByPosNegLabeld``, ``pos = neg = 1``) with random flips.

    Args:
        volumes: ``(image, label, instances or None)`` per training volume (numpy ``[*spatial]``).
        roi_size: the crop size (a volume smaller than it is padded with background).
        batch_size: crops per batch, all from one volume.
        seed: fixes the volume order, the crops and the flips.

    Example:
        >>> image, label = np.zeros((12, 12, 8), np.float32), np.zeros((12, 12, 8), bool)
        >>> label[4:6, 4:6, 3:5] = True
        >>> batch = CropSampler([(image, label, None)], (8, 8, 4), 2, seed=0).next()
        >>> batch["image"].shape, batch["label"].shape, batch["instances"]
        (torch.Size([2, 1, 8, 8, 4]), torch.Size([2, 1, 8, 8, 4]), None)
    """

    def __init__(self, volumes: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]], roi_size: Sequence[int],
                 batch_size: int, seed: int) -> None:
        from monai.transforms import Compose, RandCropByPosNegLabeld, RandFlipd, SpatialPadd

        self.with_instances = all(v[2] is not None for v in volumes)
        keys = ["image", "label", "instances"] if self.with_instances else ["image", "label"]
        self.items = [self._item(*v) for v in volumes]
        self.pipeline = Compose([
            SpatialPadd(keys, spatial_size=list(roi_size)),
            RandCropByPosNegLabeld(keys, label_key="label", spatial_size=list(roi_size), pos=1, neg=1,
                                   num_samples=batch_size, allow_smaller=True),
            *(RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in range(3)),
        ])
        self.pipeline.set_random_state(seed)
        self.rng = np.random.default_rng(seed)

    def _item(self, image: np.ndarray, label: np.ndarray, instances: np.ndarray | None) -> dict[str, np.ndarray]:
        item = {"image": normalise(image)[None], "label": np.asarray(label, dtype=np.float32)[None]}
        if self.with_instances:
            item["instances"] = np.asarray(instances, dtype=np.int64)[None]
        return item

    def next(self) -> dict[str, Any]:
        """The next batch: ``image`` and ``label`` float32 ``[B, 1, *roi]``, ``instances`` int64 or None."""
        item = self.items[int(self.rng.integers(len(self.items)))]
        crops = self.pipeline(dict(item))
        batch = {key: torch.stack([torch.as_tensor(np.asarray(c[key])) for c in crops])
                 for key in crops[0] if key in ("image", "label", "instances")}
        batch.setdefault("instances", None)
        return batch


def train_recipe(recipe: Recipe, context: RecipeContext, sampler: CropSampler, *, steps: int, seed: int,
                 device: torch.device, progress: Progress | None = None) -> torch.nn.Module:
    """Train :func:`study_network` with the recipe's loss for ``steps`` Adam steps on the sampler's batches.

    Args:
        recipe: the recipe (its ``build(context)`` gives the loss).
        context: what the recipe may know of the data (spacing, priors, budget).
        sampler: a fresh :class:`CropSampler` of this seed (the same batches for every recipe).
        steps: optimiser steps.
        seed: the network's initialisation.
        device: where to train.
        progress: called as ``progress(step, steps)`` after each step.

    Returns:
        The trained network, in eval mode.

    Raises:
        FloatingPointError: if the loss stops being finite (named with the recipe and step).
    """
    net = study_network(seed).to(device)
    loss_fn = recipe.build(context)
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    for step in range(steps):
        batch = sampler.next()
        image, label = batch["image"].to(device), batch["label"].to(device)
        instances = batch["instances"].to(device) if batch["instances"] is not None else None
        loss = loss_fn(net(image), label, instances, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"recipe {recipe.name!r}: the loss is {loss.item()} at step {step}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps)
    return net.eval()
