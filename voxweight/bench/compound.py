"""Benchmark cases ``compound`` and ``ds``: the Dice + BCE loss against MONAI, deep supervision against its sum.

``ds``: :class:`voxweight.DeepSupervision` over four outputs (full size, 1/2, 1/4, 1/8) around a
:class:`voxweight.VoxelWeightedBCE`, with a voxel weight map and a mask at full resolution, against the
hand-written weighted sum of the same loss at each scale on targets, maps and masks resampled *before*
the timing (as a data loader would deliver them). The baseline resamples with torch's own pooling
(``avg_pool3d`` for the map, a min-pool for the mask) and slicing (the target), independently of
voxweight, and the two sides must give the same loss and gradients before anything is timed. The ratio
is the cost of resampling inside the loss.

``compound``: ``VoxelWeightedDiceBCE`` forward + backward with a per-voxel weight map (eager and
``fused=True``) against MONAI's ``DiceCELoss(sigmoid=True)`` without one, and the peak memory of one
step in a fresh process (measured as the ``memory`` case does). The two compute different things by
design (a weight map; BCE where MONAI takes a softmax cross-entropy over the channels), so the check
before timing is that voxweight's loss without a map equals MONAI's ``DiceLoss(sigmoid=True)`` plus
torch's ``binary_cross_entropy_with_logits``, and that ``fused=True`` equals the eager loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from voxweight.bench.harness import BenchConfig, BenchResult, peak_rises_mib, time_paired
from voxweight.losses import DeepSupervision, VoxelWeightedBCE
from voxweight.maps import balance_factors

__all__ = ["DS_FACTORS", "DS_SCALE_WEIGHTS", "bench_compound", "bench_ds", "compound_inputs", "ds_edge", "ds_inputs",
           "pre_resample"]

DS_FACTORS = (1, 2, 4, 8)  # pooling factor of each output, full resolution first
DS_SCALE_WEIGHTS = (1.0, 0.5, 0.25, 0.125)  # = scale_weights_for("monai", 4): every scale is computed
RTOL = 1e-4  # agreement of the two sides, relative to the largest |value| (float32 sums in different orders)


def ds_edge(size: int) -> int:
    """The cube edge the ``ds`` case uses: ``size`` rounded down to a multiple of 8 (at least 8).

    Example:
        >>> ds_edge(128), ds_edge(100), ds_edge(3)
        (128, 96, 8)
    """
    return max(8, size - size % 8)


def ds_inputs(config: BenchConfig) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded logits at the four scales, a 3%-foreground target, a class-balance map and a mask.

    The map is ``bg + (fg - bg) * any(t)`` with the balanced factors of each sample's foreground fraction
    over the channels; the mask drops the first eighth of the depth axis (padding) and a box in sample 0.

    Shape:
        - outputs: ``[2, 2, e / f, e / f, e / f]`` for ``f`` in :data:`DS_FACTORS`, ``e`` = :func:`ds_edge`.
        - target ``[2, 2, e, e, e]``; weight and mask (bool) ``[2, 1, e, e, e]``.

    Example:
        >>> outputs, t, w, m = ds_inputs(BenchConfig(size=16))
        >>> [o.shape[-1] for o in outputs], list(w.shape), bool(m[:, :, :2].any())
        ([16, 8, 4, 2], [2, 1, 16, 16, 16], False)
    """
    e = ds_edge(config.size)
    g = torch.Generator().manual_seed(1)
    outputs = [torch.randn((2, 2, e // f, e // f, e // f), generator=g) for f in DS_FACTORS]
    t = (torch.rand((2, 2, e, e, e), generator=g) > 0.97).float()
    fg = t.amax(dim=1, keepdim=True)
    fg_w, bg_w = balance_factors(fg.mean(dim=(2, 3, 4), keepdim=True), "balanced")
    w = bg_w + (fg_w - bg_w) * fg
    mask = torch.ones((2, 1, e, e, e), dtype=torch.bool)
    mask[:, :, : e // 8] = False  # padding slices
    mask[0, :, e // 2 :, e // 3 : e // 3 + e // 4 + 1] = False  # an unlabelled region, off the pooling grid
    dev = config.device
    return [o.to(dev) for o in outputs], t.to(dev), w.to(dev), mask.to(dev)


def pre_resample(target: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor, factor: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The baseline's resampling by ``factor`` on the three spatial axes, with torch's own operations.

    Target: the voxel at ``factor * i + factor // 2`` of each block (nearest-exact), made contiguous;
    weight: ``F.avg_pool3d`` (the block mean); mask: a block is kept only if all its voxels are, as a
    min-pool (``-max_pool3d(-m)``) of the mask as floats. ``factor == 1`` returns the inputs.

    Example:
        >>> t, w, m = torch.arange(8.0).reshape(1, 1, 2, 2, 2), torch.ones(1, 1, 2, 2, 2), torch.ones(1, 1, 2, 2, 2) > 0
        >>> [x.flatten().tolist() for x in pre_resample(t, w, m, 2)]
        [[7.0], [1.0], [True]]
    """
    if factor == 1:
        return target, weight, mask
    h = factor // 2
    t = target[..., h::factor, h::factor, h::factor].contiguous()
    m = -F.max_pool3d(-mask.float(), factor) > 0.5
    return t, F.avg_pool3d(weight, factor), m


def _agree(name: str, a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max |b|``; raises above :data:`RTOL` (a bench comparing different things is worthless)."""
    if a.shape != b.shape:
        raise RuntimeError(f"{name}: the compared computations disagree (shapes {list(a.shape)} and {list(b.shape)})")
    diff = float((a.double() - b.double()).abs().max()) if b.numel() else 0.0
    scale = float(b.double().abs().max()) if b.numel() else 0.0
    error = diff / scale if scale else (0.0 if diff == 0 else math.inf)
    if not error <= RTOL:  # NaN fails too
        raise RuntimeError(f"{name}: the compared computations disagree (max |diff| {error:.3e} of the largest "
                           f"|value|, above {RTOL:.0e}); timing them would compare different things")
    return error


def _value_and_grads(fn: Callable[[list[torch.Tensor]], torch.Tensor], inputs: Sequence[torch.Tensor]
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    xs = [x.detach().requires_grad_() for x in inputs]
    loss = fn(xs)
    loss.backward()
    return loss.detach(), [x.grad for x in xs]


def bench_ds(config: BenchConfig) -> list[BenchResult]:
    """``DeepSupervision`` (4 scales, BCE, map + mask) vs the sum of per-scale losses on pre-resampled data."""
    outputs, t, w, m = ds_inputs(config)
    loss = VoxelWeightedBCE()
    ds = DeepSupervision(loss, DS_SCALE_WEIGHTS)
    pre = [pre_resample(t, w, m, f) for f in DS_FACTORS]  # outside the timing, as a data loader would

    def by_hand(xs: list[torch.Tensor]) -> torch.Tensor:
        terms = [s * loss(x, ti, wi, mask=mi) for s, x, (ti, wi, mi) in zip(DS_SCALE_WEIGHTS, xs, pre, strict=True)]
        return sum(terms[1:], terms[0])  # in DeepSupervision's order

    def ours(xs: list[torch.Tensor]) -> torch.Tensor:
        return ds(xs, t, w, mask=m)

    base_value, base_grads = _value_and_grads(by_hand, outputs)
    our_value, our_grads = _value_and_grads(ours, outputs)
    error = _agree("ds loss", our_value, base_value)
    for i, (a, b) in enumerate(zip(our_grads, base_grads, strict=True)):
        error = max(error, _agree(f"ds gradient of outputs[{i}]", a, b))
    e = ds_edge(config.size)
    note = f"BCE, map + mask, scale weights {list(DS_SCALE_WEIGHTS)}; loss, gradients agree (max rel. diff {error:.0e})"
    if e != config.size:
        note += f"; edge {e} (size rounded down to a multiple of 8)"
    timing = time_paired(lambda: _value_and_grads(by_hand, outputs), lambda: _value_and_grads(ours, outputs),
                         3 * config.repeats, config.device)  # a noisy machine moves the ratio: more pairs
    return [BenchResult.timed(f"deep supervision [2,2,{e}^3] x4 fwd+bwd", "sum of losses, pre-resampled",
                              timing, 1.10, note)]


def compound_inputs(config: BenchConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded logits, 3%-foreground multi-label targets and their class-balance map on ``config.device``.

    The map is ``bg + (fg - bg) * t`` with the balanced factors of each (sample, channel)'s foreground fraction.

    Shape:
        all three ``[2, 2, size, size, size]``.

    Example:
        >>> x, t, w = compound_inputs(BenchConfig(size=8))
        >>> list(x.shape), bool(((w > 1) == (t > 0)).all())  # foreground weighted up, background down
        ([2, 2, 8, 8, 8], True)
    """
    g = torch.Generator().manual_seed(2)
    shape = (2, 2, config.size, config.size, config.size)
    x = torch.randn(shape, generator=g)
    t = (torch.rand(shape, generator=g) > 0.97).float()
    fg, bg = balance_factors(t.mean(dim=(2, 3, 4), keepdim=True), "balanced")
    w = bg + (fg - bg) * t
    return x.to(config.device), t.to(config.device), w.to(config.device)


def bench_compound(config: BenchConfig) -> list[BenchResult]:
    """``VoxelWeightedDiceBCE`` with a voxel map (eager, fused; time and peak memory) vs MONAI ``DiceCELoss``."""
    from monai.losses import DiceCELoss, DiceLoss

    from voxweight.losses import VoxelWeightedDiceBCE
    from voxweight.losses.fused import compile_failed

    x, t, w = compound_inputs(config)
    monai, monai_dice = DiceCELoss(sigmoid=True), DiceLoss(sigmoid=True)
    eager, fused = VoxelWeightedDiceBCE(), VoxelWeightedDiceBCE(fused=True)
    no_map = _value_and_grads(lambda xs: eager(xs[0], t), [x])
    reference = _value_and_grads(lambda xs: monai_dice(xs[0], t) + F.binary_cross_entropy_with_logits(xs[0], t), [x])
    error = max(_agree("DiceBCE without a map vs MONAI DiceLoss + BCE", a, b)
                for a, b in zip([no_map[0], *no_map[1]], [reference[0], *reference[1]], strict=True))
    start = time.perf_counter()
    with_map = _value_and_grads(lambda xs: fused(xs[0], t, w), [x])  # compiles here, outside the timing
    compile_s = time.perf_counter() - start
    eager_map = _value_and_grads(lambda xs: eager(xs[0], t, w), [x])
    fused_error = max(_agree("DiceBCE fused=True vs eager", a, b)
                      for a, b in zip([with_map[0], *with_map[1]], [eager_map[0], *eager_map[1]], strict=True))

    def step(loss: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        return lambda: _value_and_grads(lambda xs: loss(xs[0]), [x])

    baseline = step(lambda xi: monai(xi, t))
    reps, dev, shape = 3 * config.repeats, config.device, f"[2,2,{config.size}^3]"
    name, base_name = f"DiceBCE fwd+bwd {shape}", "MONAI DiceCELoss, no map"
    agree = f"no map = MONAI Dice + BCE (max rel. diff {error:.0e})"
    results = [BenchResult.timed(f"{name}, voxel map", base_name,
                                 time_paired(baseline, step(lambda xi: eager(xi, t, w)), reps, dev), 1.0,
                                 f"eager; {agree}")]
    note = ("torch.compile unavailable here: eager fallback" if compile_failed() else
            f"voxel map; first call (compile) {compile_s:.1f} s; = eager (max rel. diff {fused_error:.0e})")
    results.append(BenchResult.timed(f"{name}, fused=True", base_name,
                                     time_paired(baseline, step(lambda xi: fused(xi, t, w)), reps, dev), 0.6, note))
    results.extend(_compound_memory(config, shape))
    return results


_MEMORY_SCRIPT = r"""
import torch
from voxweight.bench.compound import compound_inputs
from voxweight.bench.harness import BenchConfig
torch.set_num_threads({threads})
x, t, w = compound_inputs(BenchConfig(size={size}))
if "{variant}" == "monai":
    from monai.losses import DiceCELoss
    loss_fn = DiceCELoss(sigmoid=True)
    run = lambda xi: loss_fn(xi, t)
else:
    from voxweight import VoxelWeightedDiceBCE
    loss_fn = VoxelWeightedDiceBCE()
    run = lambda xi: loss_fn(xi, t, w)
def step():
    xi = x.detach().requires_grad_()
    run(xi).backward()
    return xi.grad
"""


def _compound_memory(config: BenchConfig, shape: str) -> list[BenchResult]:
    rises = peak_rises_mib([_MEMORY_SCRIPT.format(threads=config.threads, size=config.size, variant=v)
                            for v in ("monai", "eager")])
    if rises is None:
        return []  # Linux only, and clear_refs must be writable: no measurement, no row
    monai_mib, ours_mib = rises
    note = f"voxel map, CPU, fresh processes; one tensor of this shape is {4 * config.size**3 * 4 / 2**20:.1f} MiB"
    return [BenchResult(f"DiceBCE peak memory {shape}, eager", "MONAI DiceCELoss, no map", monai_mib, ours_mib,
                        1.0, note, unit="MiB")]
