"""The ranks of tests/losses/test_sync.py, and the cases they run (importable by spawned processes).

Each case is a loss configuration and the kinds of inputs it takes. ``batch`` builds one seeded full batch;
a rank trains on its slice of it through ``DistributedDataParallel`` and also computes, alone, the
reference: the same loss with ``sync=False`` on the whole batch, through a copy of the same model.
"""

from __future__ import annotations

import copy
import datetime
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import nn

from voxweight import VoxelWeightedBCE, VoxelWeightedCE, VoxelWeightedDice, VoxelWeightedDiceBCE, VoxelWeightedDiceCE
from voxweight.losses.fused import compile_failed

WORLD = 2
N, C, SPATIAL = 4, 3, (4, 5, 3)
IGNORE = 255
# Samples per rank: uneven halves, the same halves with every voxel of rank 1's sample masked out (the same
# shapes on each rank in both: fused=True compiles once per rank), and a rank without samples.
SPLITS = {"uneven": (3, 1), "rank1_masked": (3, 1), "rank1_empty": (4, 0)}
COMPILED_SPLITS = ("uneven", "rank1_masked")


class Case(NamedTuple):
    make: Callable[[bool], nn.Module]  # sync -> the loss module
    target: str  # "binary" [N, C, *S], "index" [N, *S] (with ignore_index voxels), "index1" [N, 1, *S], "soft"
    weight: bool = True  # a voxel map [N, 1, *S]
    mask: bool = True
    sample_weight: bool = True


PW, CW = [3.0, 1.5, 0.5], [1.0, 2.0, 0.5]
CASES: dict[str, Case] = {
    "bce_mean": Case(lambda s: VoxelWeightedBCE(pos_weight=PW, class_weight=CW, sync=s), "binary"),
    "bce_weighted_mean": Case(lambda s: VoxelWeightedBCE(PW, CW, reduction="weighted_mean", sync=s), "binary"),
    "bce_sum": Case(lambda s: VoxelWeightedBCE(PW, CW, reduction="sum", sync=s), "binary"),
    "bce_mean_no_mask": Case(lambda s: VoxelWeightedBCE(PW, sync=s), "binary", mask=False),  # torch's own mean
    "bce_sum_no_mask": Case(lambda s: VoxelWeightedBCE(reduction="sum", sync=s), "binary", mask=False),
    "bce_focal": Case(lambda s: VoxelWeightedBCE(PW, reduction="weighted_mean", focal_gamma=2.0, sync=s), "binary"),
    "bce_balanced_mean": Case(lambda s: VoxelWeightedBCE(balance="balanced", sync=s), "binary", False, False),
    "bce_balanced_weighted": Case(lambda s: VoxelWeightedBCE(balance="balanced", reduction="weighted_mean",
                                                             sync=s), "binary", False, False),
    "bce_balanced_map": Case(lambda s: VoxelWeightedBCE(PW, balance="inverse_frequency", reduction="weighted_mean",
                                                        sync=s), "binary"),
    "bce_fused_eager": Case(lambda s: VoxelWeightedBCE(PW, CW, reduction="weighted_mean", fused=True, sync=s),
                            "binary"),
    "ce_weighted_mean": Case(lambda s: VoxelWeightedCE([0.2, 1.0, 3.0], ignore_index=IGNORE,
                                                       reduction="weighted_mean", sync=s), "index"),
    "ce_mean": Case(lambda s: VoxelWeightedCE([0.2, 1.0, 3.0], ignore_index=IGNORE, sync=s), "index"),
    "ce_sum": Case(lambda s: VoxelWeightedCE(ignore_index=IGNORE, reduction="sum", sync=s), "index"),
    "ce_soft_weighted_mean": Case(lambda s: VoxelWeightedCE([0.2, 1.0, 3.0], reduction="weighted_mean",
                                                            sync=s), "soft"),
    "dice_sigmoid": Case(lambda s: VoxelWeightedDice(CW, sync=s), "binary"),
    "dice_sigmoid_sum": Case(lambda s: VoxelWeightedDice(CW, reduction="sum", squared=True, sync=s), "binary"),
    "dice_softmax_batch": Case(lambda s: VoxelWeightedDice(CW, activation="softmax", include_background=False,
                                                           batch=True, sync=s), "index1"),
    "dice_sigmoid_batch_tversky": Case(lambda s: VoxelWeightedDice(alpha=0.3, beta=0.7, batch=True, sync=s),
                                       "binary"),
    "dice_sudre_softmax": Case(lambda s: VoxelWeightedDice(CW, activation="softmax", generalized="sudre", sync=s),
                               "index1"),
    "dice_sudre_sigmoid_batch": Case(lambda s: VoxelWeightedDice(generalized="sudre", batch=True, sync=s),
                                     "binary"),
    "dice_bce_joint_batch": Case(lambda s: VoxelWeightedDiceBCE(PW, CW, batch=True, sync=s), "binary"),
    "dice_bce_joint_sum": Case(lambda s: VoxelWeightedDiceBCE(class_weight=CW, reduction="sum",
                                                              bce_reduction="sum", sync=s), "binary"),
    "dice_ce_ignore": Case(lambda s: VoxelWeightedDiceCE(CW, ignore_index=IGNORE, include_background=False,
                                                         sync=s), "index"),
}
FUSED_CASES: dict[str, Case] = {
    "bce_fused_weighted_mean": Case(lambda s: VoxelWeightedBCE(PW, CW, reduction="weighted_mean", fused=True,
                                                               sync=s), "binary"),
}


def batch(name: str, split: str, dtype: torch.dtype = torch.float64) -> dict[str, Any]:
    """The full batch of a case (the same on every rank and in the parent: seeded by the case and split)."""
    case = (CASES | FUSED_CASES)[name]
    g = torch.Generator().manual_seed(sum(map(ord, name + split)))
    shape = (N, C, *SPATIAL)
    if case.target == "binary":
        target = (torch.rand(shape, generator=g) > 0.7).to(dtype)
    elif case.target == "soft":
        target = torch.softmax(3 * torch.randn(shape, generator=g), dim=1).to(dtype)
    else:
        target = torch.randint(0, C, (N, *SPATIAL), generator=g)
        if case.target == "index":
            target[torch.rand(target.shape, generator=g) < 0.15] = IGNORE
        else:
            target = target.unsqueeze(1)
    out: dict[str, Any] = {"x": torch.randn(N, 1, *SPATIAL, generator=g, dtype=dtype), "target": target}
    if case.weight:
        out["weight"] = (0.5 + 2 * torch.rand(N, 1, *SPATIAL, generator=g)).to(dtype)
    if case.mask:
        mask = torch.rand(N, 1, *SPATIAL, generator=g) < 0.8
        if split == "rank1_masked":
            mask[SPLITS[split][0]:] = False
        out["mask"] = mask
    if case.sample_weight:
        out["sample_weight"] = torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=dtype)
    return out


def loss_of(loss_fn: nn.Module, logits: torch.Tensor, data: dict[str, Any], lo: int, hi: int) -> torch.Tensor:
    """The loss of samples ``lo:hi`` of ``data`` given the network's ``logits`` for them."""
    part = {k: v[lo:hi] for k, v in data.items() if k not in ("x", "target")}
    return loss_fn(logits, data["target"][lo:hi], part.pop("weight", None), **part)


def model(dtype: torch.dtype = torch.float64) -> nn.Module:
    """The network: one 3D convolution, initialised the same way on every rank."""
    torch.manual_seed(0)
    return nn.Conv3d(1, C, 3, padding=1).to(dtype)


def grads(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in module.parameters()]


def run(rank: int, init_file: str, out_dir: str, names: list[str], splits: list[str], compile_ok: bool) -> None:
    """One rank: for every case and split, DDP with sync=True and sync=False, and the single-process reference."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=120))
    try:
        if not compile_ok:  # fused=True then runs its eager fallback, with sync's handling around it
            torch.compile = _no_compile
        cases = CASES | FUSED_CASES
        net = model()
        reference_net = copy.deepcopy(net)
        ddp = nn.parallel.DistributedDataParallel(net)
        results: dict[str, Any] = {}
        for split in splits:
            sizes = SPLITS[split]
            lo = sum(sizes[:rank])
            hi = lo + sizes[rank]
            for name in names:
                data = batch(name, split)
                for sync in (True, False):
                    ddp.zero_grad()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # "fused=True could not compile"
                        loss = loss_of(cases[name].make(sync), ddp(data["x"][lo:hi]), data, lo, hi)
                    loss.backward()
                    results[f"{split}/{name}/{sync}"] = (loss.detach(), grads(ddp.module))
                reference_net.zero_grad()
                reference = cases[name].make(False)
                if getattr(reference, "fused", False):
                    reference.fused = False  # the eager path (equal to rounding): no compilation for this shape
                loss = loss_of(reference, reference_net(data["x"]), data, 0, N)
                loss.backward()
                results[f"{split}/{name}/reference"] = (loss.detach(), grads(reference_net))
        results["compiled"] = not compile_failed()  # False: fused=True ran its eager fallback
        torch.save(results, Path(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _no_compile(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("torch.compile is switched off in this test")
