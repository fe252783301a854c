r"""Thin structures, measured: the clDice metric, the Betti-0 error, and a study of three losses on vessel trees.

:func:`cldice_metric` is Shit et al.'s (2021) clDice on hard skeletons; :func:`betti0_error` compares component
counts with full connectivity (26 in 3D, 8 in 2D: a thin vessel stepping diagonally is one vessel, not a staircase
of breaks; Lee's thinning keeps that connectivity). :func:`run_tubular_study` trains one small U-Net per seed on
vessel trees (anisotropic voxels), from the same weights, in the same batch order, for the same Adam steps, with
``"dice_ce"`` (:class:`~voxweight.losses.compound.VoxelWeightedDiceCE`, softmax over 2 classes, Dice without the
background as in nnU-Net: on 1-3% foreground the background Dice is ~1 and says nothing), ``"dice_ce_skelrec"``
(that Dice + CE in :class:`~voxweight.losses.skeleton_compound.DiceCESkeletonRecall`, recall weight 1 as in the
reference trainer, on each label's :func:`voxweight.tubed_skeleton`) and ``"dice_ce_cldice"`` (that Dice + CE plus
:data:`CLDICE_ALPHA` times :func:`~voxweight.losses.cldice.voxel_weighted_cldice`, on the foreground channel).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from voxweight._validate import check_positive_int, check_positive_number, describe
from voxweight.demo.metrics import overlap_scores
from voxweight.demo.vessels import vessel_tree
from voxweight.losses.cldice import voxel_weighted_cldice
from voxweight.losses.compound import VoxelWeightedDiceCE
from voxweight.losses.skeleton_compound import DiceCESkeletonRecall
from voxweight.maps.skeleton import tubed_skeleton
from voxweight.study.metrics import betti0_error as study_betti0
from voxweight.study.metrics import cldice_metric as study_cldice

__all__ = ["CLDICE_ALPHA", "TUBULAR_VARIANTS", "TubularData", "TubularReport", "TubularScores", "betti0_error",
           "cldice_metric", "dice_metric", "run_tubular_study", "tubular_data", "tubular_network"]

TUBULAR_VARIANTS = ("dice_ce", "dice_ce_skelrec", "dice_ce_cldice")
#: Weight of the clDice term: the default ``alpha`` of MONAI's ``SoftDiceclDiceLoss`` and of the authors'
#: ``soft_dice_cldice`` (which weigh the Dice by ``1 - alpha``; here the Dice + CE keeps weight 1 in all three).
CLDICE_ALPHA = 0.5


def _masks(pred: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays, checked: same shape, 2 or 3 axes, values 0 and 1 only."""
    a, b = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in (pred, truth))
    for name, m in (("pred", a), ("truth", b)):
        binary = m.dtype == bool or (np.issubdtype(m.dtype, np.number) and np.isin(m, (0, 1)).all())
        if m.ndim not in (2, 3) or not binary:
            raise ValueError(f"{name}: expected a 2D or 3D binary mask (values 0 and 1 only), got {describe(m)}")
    if a.shape != b.shape:
        raise ValueError(f"truth: expected pred's shape {list(a.shape)}, got {list(b.shape)}")
    return a.astype(bool), b.astype(bool)


def dice_metric(pred: Any, truth: Any) -> float:
    """Dice of two binary masks, ``2 |P & T| / (|P| + |T|)``; 1.0 when both are empty.

    Raises:
        ValueError: as :func:`cldice_metric`.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> dice_metric(np.array([[1, 1, 0]]), np.array([[1, 0, 0]]))
        0.6666666666666666
    """
    return overlap_scores(*_masks(pred, truth))[0]


def cldice_metric(pred: Any, truth: Any) -> float:
    r"""The clDice metric: the harmonic mean of topology precision and sensitivity on hard skeletons.

    ``T_prec = |S(P) & T| / |S(P)|``, ``T_sens = |S(T) & P| / |S(T)|``, ``clDice = 2 T_prec T_sens / (T_prec +
    T_sens)``, ``S`` scikit-image's ``skeletonize`` (Lee's method in 3D, Zhang's in 2D), or the mask where that is
    empty (it thins some solid blocks, a 4^3 cube, to nothing). Both empty: 1.0 (nothing to find, nothing found);
    one empty, or ``T_prec = T_sens = 0``: 0.0. Swapping the masks swaps ``T_prec`` and ``T_sens``: symmetric.

    Raises:
        ValueError: for masks of different shapes, other than 2 or 3 axes, or values other than 0 and 1.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> truth = np.zeros((5, 10), bool); truth[2] = True  # a line, its own skeleton
        >>> pred = truth.copy(); pred[2, 5:] = False  # half of it: T_prec = 1, T_sens = 1/2
        >>> round(cldice_metric(pred, truth), 6)
        0.666667
    """
    return study_cldice(*_masks(pred, truth))  # the study's metric, on checked numpy masks


def betti0_error(pred: Any, truth: Any) -> int:
    """``|#components(pred) - #components(truth)|``, full connectivity (26 in 3D, 8 in 2D; see the module).

    Raises:
        ValueError: as :func:`cldice_metric`.

    Shape:
        - pred, truth: ``[H, W]`` or ``[D, H, W]``, the same.

    Example:
        >>> truth = np.zeros((3, 7), bool); truth[1] = True
        >>> pred = truth.copy(); pred[1, 3] = False  # the line broken in two
        >>> betti0_error(pred, truth)
        1
    """
    return study_betti0(*_masks(pred, truth))


class TubularScores(NamedTuple):
    """Held-out scores, each the mean over the held-out volumes (over seeds too in :attr:`TubularReport.means`)."""

    dice: float
    cldice: float
    betti0_error: float


class TubularData(NamedTuple):
    """Vessel trees as tensors: z-scored images ``[n, 1, *shape]`` float32, labels and tubed skeletons int64."""

    images: torch.Tensor
    labels: torch.Tensor
    skeletons: torch.Tensor


def tubular_data(n: int, shape: tuple[int, int, int], spacing: tuple[float, float, float],
                 rng: np.random.Generator) -> TubularData:
    """``n`` vessel trees from ``rng`` (``vessel_tree``'s radii 1-4 and 15 branches), images z-scored per volume.

    The skeletons are ``tubed_skeleton(label)``: the reference's tube (two cross dilations), inside the label.

    Shape:
        - images, labels, skeletons: ``[n, 1, *shape]``.

    Example:
        >>> data = tubular_data(2, (16, 16, 16), (1.0, 1.0, 2.0), np.random.default_rng(0))
        >>> data.images.shape, data.labels.dtype, bool((data.skeletons <= data.labels).all())
        (torch.Size([2, 1, 16, 16, 16]), torch.int64, True)
    """
    images, labels = zip(*(vessel_tree(shape, spacing, rng) for _ in range(check_positive_int("n", n))), strict=True)
    images, labels = np.stack([(im - im.mean()) / im.std() for im in images])[:, None], np.stack(labels)[:, None]
    return TubularData(torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels.astype(np.int64)),
                       torch.from_numpy(tubed_skeleton(labels).astype(np.int64)))


def tubular_network(seed: int) -> torch.nn.Module:
    """The study's small MONAI U-Net: 3D, 1 channel in, 2 class logits out, 8/16/32 features, seeded.

    Example:
        >>> tubular_network(0)(torch.zeros(1, 1, 16, 16, 8)).shape
        torch.Size([1, 2, 16, 16, 8])
    """
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    return UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)


@dataclass
class TubularReport:
    """What :func:`run_tubular_study` measured, per variant ``v`` (of :data:`TUBULAR_VARIANTS`) and ``seeds[i]``.

    ``scores[v][i]``, ``losses[v][i]`` (each step's), ``initial[v][i]`` (the state dict before training), ``nets[v][i]``
    (trained); ``setup``: budget and data sizes; ``seconds``: wall time.
    """

    seeds: tuple[int, ...]
    scores: dict[str, list[TubularScores]]
    losses: dict[str, list[list[float]]]
    initial: dict[str, list[dict[str, torch.Tensor]]]
    nets: dict[str, list[torch.nn.Module]]
    setup: dict[str, Any]
    seconds: float

    @property
    def means(self) -> dict[str, TubularScores]:
        """Each variant's scores averaged over the seeds."""
        return {v: TubularScores(*np.mean(np.array(s, np.float64), axis=0).tolist()) for v, s in self.scores.items()}

    def format_table(self) -> str:
        """The mean (and standard deviation over seeds) of Dice, clDice and Betti-0 error per variant, as text."""
        s = self.setup
        lines = [f"{len(self.seeds)} seed(s) x {s['val']} held-out volume(s) {s['shape']}, spacing {s['spacing']}; "
                 f"{s['train']} to train, {s['epochs']} epochs x {s['steps_per_epoch']} steps; {self.seconds:.0f} s",
                 f"{'variant':<17} {'Dice':>16} {'clDice':>16} {'Betti-0 error':>16}"]
        for v, rows in self.scores.items():
            a = np.array(rows, dtype=np.float64)
            cells = [f"{m:.3f} ± {d:.3f}" for m, d in zip(a.mean(0), a.std(0), strict=True)]
            lines.append(f"{v:<17} " + " ".join(f"{c:>16}" for c in cells))
        return "\n".join(lines)


def _loss_fn(variant: str) -> Any:
    """``loss(logits, labels, skeletons)`` of one variant."""
    dice_ce = VoxelWeightedDiceCE(include_background=False)
    if variant == "dice_ce":
        return lambda x, y, s: dice_ce(x, y)
    if variant == "dice_ce_skelrec":
        compound = DiceCESkeletonRecall(dice_ce, weight_srec=1.0)
        return lambda x, y, s: compound(x, y, skeleton=s)
    return lambda x, y, s: dice_ce(x, y) + CLDICE_ALPHA * voxel_weighted_cldice(
        x, y, iterations=3, activation="softmax", include_background=False, smooth=1.0)


def _train(variant: str, data: TubularData, seed: int, epochs: int, batch_size: int, lr: float, device: torch.device,
           progress: bool) -> tuple[torch.nn.Module, list[float], dict[str, torch.Tensor]]:
    net = tubular_network(seed).to(device)  # built in training mode (it has no dropout)
    initial = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    loss_fn, opt = _loss_fn(variant), torch.optim.Adam(net.parameters(), lr=lr)
    order_rng, n, losses = np.random.default_rng(seed), len(data.images), []  # the same order for every variant
    for epoch in range(epochs):
        order = order_rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = torch.from_numpy(order[start:start + batch_size])
            x, y, s = (t[idx].to(device) for t in data)
            loss = loss_fn(net(x), y, s)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if progress:
            print(f"seed {seed} {variant}: epoch {epoch + 1}/{epochs}, loss {losses[-1]:.4f}", flush=True)
    return net.eval(), losses, initial


def _evaluate(net: torch.nn.Module, data: TubularData, device: torch.device) -> TubularScores:
    with torch.no_grad():
        pred = torch.cat([net(x[None].to(device)).argmax(1).cpu() for x in data.images]).numpy() == 1
    truth = data.labels[:, 0].numpy() == 1
    rows = [(dice_metric(p, t), cldice_metric(p, t), betti0_error(p, t)) for p, t in zip(pred, truth, strict=True)]
    return TubularScores(*np.mean(np.array(rows, dtype=np.float64), axis=0).tolist())


def _check_study(seeds: Any, shape: Any, counts: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...], list]:
    if not isinstance(seeds, Sequence) or not seeds or not all(isinstance(s, int | np.integer) for s in seeds):
        raise TypeError(f"seeds: expected a non-empty sequence of integers, got {seeds!r}")
    if not isinstance(shape, Sequence) or len(shape) != 3 or any(not isinstance(n, int) or n < 8 or n % 4
                                                                 for n in shape):
        raise ValueError(f"shape: expected 3 integers >= 8, multiples of 4 (the U-Net halves twice), got {shape!r}")
    return tuple(int(s) for s in seeds), tuple(shape), [check_positive_int(k, v) for k, v in counts.items()]


def run_tubular_study(*, seeds: Sequence[int] = (0, 1, 2), train: int = 16, val: int = 4, epochs: int = 25,
                      shape: tuple[int, int, int] = (48, 48, 48), spacing: tuple[float, float, float] = (0.8, 0.8, 1.6),
                      batch_size: int = 2, lr: float = 3e-3, device: str | torch.device = "cpu",
                      progress: bool = False) -> TubularReport:
    """Train :func:`tubular_network` with each of :data:`TUBULAR_VARIANTS` per seed; score it on held-out trees.

    Per seed ``k``: ``np.random.default_rng(k)`` draws ``train`` then ``val`` trees (:func:`tubular_data`); every
    variant starts from ``tubular_network(k)`` and sees the batches in the order of another ``default_rng(k)``'s
    permutations, ``epochs * ceil(train / batch_size)`` Adam steps. The prediction is the argmax on each whole
    held-out volume; its metrics are averaged over those volumes. Deterministic per seed on the CPU.

    Args:
        seeds: the seeds, one run of every variant each.
        train: training trees per seed, >= 1.
        val: held-out trees per seed, >= 1.
        epochs: passes over the training trees, >= 1.
        shape: volume shape, 3 integers >= 8 and multiples of 4.
        spacing: voxel size (anisotropic by default: thick slices along the last axis).
        batch_size: volumes per step, >= 1.
        lr: Adam's learning rate, > 0.
        device: where the network trains (metrics are computed on the CPU).
        progress: print the loss after every epoch.

    Returns:
        A :class:`TubularReport`.

    Raises:
        TypeError, ValueError: for bad arguments, naming them.

    Example:
        >>> report = run_tubular_study(seeds=(0,), train=1, val=1, epochs=1, shape=(16, 16, 16))
        >>> sorted(report.means) == sorted(TUBULAR_VARIANTS)
        True
    """
    start = time.perf_counter()
    counts = {"train": train, "val": val, "epochs": epochs, "batch_size": batch_size}
    seeds, shape, (train, val, epochs, batch_size) = _check_study(seeds, shape, counts)
    lr, device = check_positive_number("lr", lr), torch.device(device)
    runs: dict[str, list[tuple]] = {v: [] for v in TUBULAR_VARIANTS}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        data, held_out = tubular_data(train, shape, spacing, rng), tubular_data(val, shape, spacing, rng)
        for variant in TUBULAR_VARIANTS:
            net, losses, initial = _train(variant, data, seed, epochs, batch_size, lr, device, progress)
            runs[variant].append((_evaluate(net, held_out, device), losses, initial, net))
    setup = {"train": train, "val": val, "epochs": epochs, "steps_per_epoch": -(-train // batch_size),
             "batch_size": batch_size, "lr": lr, "shape": shape, "spacing": spacing}
    fields = ({v: [run[k] for run in r] for v, r in runs.items()} for k in range(4))  # scores, losses, initial, nets
    return TubularReport(seeds, *fields, setup, time.perf_counter() - start)
