"""Bench case ``skeleton``: tubed skeletons against the Skeleton Recall reference procedure.

The baseline re-derives what the reference ``SkeletonTransform`` (MIC-DKFZ/Skeleton-Recall,
``custom_transforms/skeletonization.py``) does to a ``[1, *spatial]`` label: scikit-image's ``skeletonize`` of
the whole foreground, two grey dilations (``skimage.morphology.dilation``, cross footprint) of the int16
skeleton, times the label. voxweight's :func:`~voxweight.maps.skeleton.tubed_skeleton` with its default
arguments must give the same values before anything is timed. Label: a ``size^3`` binary vessel tree
(:func:`skeleton_tree`; branching tubes of radius 4 down to 1 voxel). Target: no slower (ratio <= 1.0).
A second row is the cost of the Skeleton Recall term in training: ``DiceCESkeletonRecall`` forward +
backward against ``VoxelWeightedDiceCE`` alone on two crops of the tree.
"""

from __future__ import annotations

import numpy as np

from voxweight.bench.harness import BenchConfig, BenchResult, backward_step, time_paired

__all__ = ["bench_skeleton", "reference_tubed_skeleton", "skeleton_tree"]


def skeleton_tree(size: int, seed: int = 3, generations: int = 4) -> np.ndarray:
    """A ``size^3`` uint8 label of one branching tree: straight tubes, radius ``4 * 0.7^g`` (>= 1) at generation g.

    Each branch runs from its parent's end in a jittered direction and splits in two, ``generations`` deep.

    Example:
        >>> tree = skeleton_tree(32)
        >>> tree.dtype.name, sorted(np.unique(tree).tolist())
        ('uint8', [0, 1])
    """
    from voxweight.maps.distance import distance_to_foreground

    rng = np.random.default_rng(seed)
    label = np.zeros((size,) * 3, dtype=bool)
    level = [(np.array([0.1, 0.5, 0.5]) * (size - 1), np.array([1.0, 0.0, 0.0]))]
    for g in range(generations):
        centres, grown = np.zeros_like(label), []
        for start, heading in level:
            for _ in range(2 if g else 1):
                step = heading + rng.normal(0.0, 0.6, 3)
                end = np.clip(start + step / np.linalg.norm(step) * size * 0.3 * 0.8 ** g, 0, size - 1)
                points = start + (end - start) * np.linspace(0.0, 1.0, 4 * size)[:, None]
                centres[tuple(np.rint(points).astype(np.int64).T)] = True
                grown.append((end, step))
        label |= distance_to_foreground(centres) <= max(1.0, 4.0 * 0.7 ** g)
        level = grown
    return label.astype(np.uint8)


def reference_tubed_skeleton(seg: np.ndarray) -> np.ndarray:
    """The reference ``SkeletonTransform`` (``do_tube=True``) re-derived: int16 tube with the label's values.

    Shape:
        - seg: ``[1, *spatial]`` (2 or 3 spatial dims), class ids >= 0; output: the same, int16.

    Example:
        >>> line = np.zeros((1, 5, 9), dtype=np.uint8)
        >>> line[0, 1:4, 1:8] = 3
        >>> reference_tubed_skeleton(line)[0, 2]
        array([0, 3, 3, 3, 3, 3, 3, 3, 0], dtype=int16)
    """
    from skimage.morphology import dilation, skeletonize

    foreground = seg > 0
    out = np.zeros(foreground.shape, dtype=np.int16)
    if foreground[0].any():
        tube = dilation(dilation(skeletonize(foreground[0]).astype(np.int16)))
        out[0] = tube * seg[0].astype(np.int16)
    return out


def bench_skeleton(config: BenchConfig) -> list[BenchResult]:
    """``tubed_skeleton`` vs the reference procedure on a ``size^3`` vessel tree (target <= 1.0).

    Example:
        >>> bench_skeleton(BenchConfig(size=16, repeats=1))[0].max_ratio
        1.0
    """
    from voxweight.maps.skeleton import tubed_skeleton

    e = config.size
    label = skeleton_tree(e)[None]
    reference = reference_tubed_skeleton(label)
    ours = tubed_skeleton(label)
    if not np.array_equal(ours, reference):  # the same tube, or nothing is compared
        raise AssertionError(f"tubed_skeleton differs from the reference on {int((ours != reference).sum())} voxels")
    timing = time_paired(lambda: reference_tubed_skeleton(label), lambda: tubed_skeleton(label), config.repeats)
    note = f"vessel tree, {int(label.sum())} foreground voxels; tubes identical"
    return [BenchResult.timed(f"tubed skeleton {e}^3", "skimage skeletonize + 2 dilations + mask (reference)",
                              timing, 1.0, note), _recall_cost(config, label[0])]


def _recall_cost(config: BenchConfig, tree: np.ndarray) -> BenchResult:
    """Dice + CE + Skeleton Recall vs Dice + CE alone, fwd+bwd on ``[2, 2, (size/2)^3]`` crops of the tree."""
    import torch

    from voxweight.losses import DiceCESkeletonRecall, VoxelWeightedDiceCE
    from voxweight.maps.skeleton import tubed_skeleton

    e = max(8, config.size // 2)
    crops = np.stack([tree[:e, :e, :e], tree[-e:, -e:, -e:]])[:, None]  # [2, 1, e^3]
    target = torch.from_numpy(crops.astype(np.int64)).to(config.device)
    skeleton = torch.from_numpy(tubed_skeleton(crops).astype(np.int64)).to(config.device)
    x = torch.randn(2, 2, e, e, e, generator=torch.Generator().manual_seed(4)).to(config.device)
    dice_ce = VoxelWeightedDiceCE()
    both = DiceCESkeletonRecall(dice_ce)
    expected = dice_ce(x, target) + both.srec(x, skeleton)
    torch.testing.assert_close(both(x, target, skeleton=skeleton), expected)  # the sum of the two terms

    timing = time_paired(backward_step(x, lambda z: dice_ce(z, target)),
                         backward_step(x, lambda z: both(z, target, skeleton=skeleton)), config.repeats, config.device)
    note = "softmax, 2 classes; the issue sets no target (the paper: 'small'), 1.5 is ours"
    return BenchResult.timed(f"Dice+CE+Skeleton Recall fwd+bwd [2,2,{e}^3]", "Dice+CE alone", timing, 1.5, note)
