"""``sync=True`` on the reduced losses: under DDP the loss and the averaged gradient are those of one process.

Oracle: the same loss with ``sync=False``, computed by one process on the concatenated batch through an
identical model (2 gloo processes, each with part of the batch: uneven halves 3 + 1, a rank whose voxels
are all masked out, a rank without samples); and, without a process group or with one rank, ``sync=False`` itself
(bit for bit). ``sync=False`` under DDP gives a different gradient there, so the comparison can fail.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.losses import sync_worker
from tests.losses.sync_worker import CASES, COMPILED_SPLITS, FUSED_CASES, SPLITS, batch, loss_of
from voxweight import voxel_weighted_bce, voxel_weighted_ce, voxel_weighted_dice
from voxweight.losses import VoxelWeightedBCE, VoxelWeightedCE, VoxelWeightedDice
from voxweight.losses.bce import BCEOptions, bce_options
from voxweight.losses.ce import CEOptions, ce_options
from voxweight.losses.dice import DiceOptions, dice_options
from voxweight.losses.sync import check_sync, synced

needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available")
TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64 throughout: only the order of the sums differs


def _spawn(tmp_path, names: list[str], splits: list[str], compile_ok: bool) -> list[dict]:
    mp.spawn(sync_worker.run, args=(str(tmp_path / "init"), str(tmp_path), names, splits, compile_ok),
             nprocs=sync_worker.WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(sync_worker.WORLD)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Both ranks' results for every case and split: one pair of processes for the whole module."""
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available")
    return _spawn(tmp_path_factory.mktemp("sync"), sorted(CASES), sorted(SPLITS), compile_ok=False)


def _check_exact_and_unsynced_wrong(results: list[dict], key: str) -> None:
    ref_loss, ref_grads = results[0][f"{key}/reference"]
    assert torch.equal(ref_loss, results[1][f"{key}/reference"][0])  # both ranks built the same batch
    for rank in results:
        loss, grads = rank[f"{key}/True"]
        torch.testing.assert_close(loss, ref_loss, **TOL)
        for g, ref in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g, ref, **TOL)
    assert torch.equal(results[0][f"{key}/True"][0], results[1][f"{key}/True"][0])  # the same value everywhere
    unsynced = results[0][f"{key}/False"][1]  # DDP's average of per-rank losses: not the whole batch's gradient
    assert not all(torch.allclose(g, ref, rtol=1e-3) for g, ref in zip(unsynced, ref_grads, strict=True))


@needs_gloo
@pytest.mark.parametrize("split", sorted(SPLITS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_ddp_loss_and_gradients_equal_one_process_on_the_whole_batch(ranks, name, split):
    _check_exact_and_unsynced_wrong(ranks, f"{split}/{name}")


@needs_gloo
@pytest.mark.slow
def test_fused_kernel_under_ddp_equals_one_process(tmp_path):
    """fused=True with torch.compile (once per rank, 15-20 s each on a CPU): the same exactness."""
    results = _spawn(tmp_path, sorted(FUSED_CASES), list(COMPILED_SPLITS), compile_ok=True)
    if not all(r["compiled"] for r in results):
        pytest.skip("torch.compile does not work here (fused=True fell back to the eager path)")
    for split in COMPILED_SPLITS:
        for name in FUSED_CASES:
            _check_exact_and_unsynced_wrong(results, f"{split}/{name}")


def _single_process(name: str, sync: bool) -> tuple[torch.Tensor, torch.Tensor]:
    data = batch(name, "uneven")
    logits = torch.randn(sync_worker.N, sync_worker.C, *sync_worker.SPATIAL, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(1), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fused=True where compiling fails
        loss = loss_of(CASES[name].make(sync), logits, data, 0, sync_worker.N)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss, grad


@pytest.mark.parametrize("name", sorted(set(CASES) - {"bce_fused_eager"}))
def test_without_a_process_group_sync_changes_nothing(name):
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is initialised in this process")
    assert not synced(True)
    loss, grad = _single_process(name, sync=True)
    ref_loss, ref_grad = _single_process(name, sync=False)
    assert torch.equal(loss, ref_loss) and torch.equal(grad, ref_grad)


@needs_gloo
def test_with_one_rank_sync_changes_nothing(tmp_path):
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        assert not synced(True)
        for name in sorted(set(CASES) - {"bce_fused_eager"}):
            loss, grad = _single_process(name, sync=True)
            ref_loss, ref_grad = _single_process(name, sync=False)
            assert torch.equal(loss, ref_loss) and torch.equal(grad, ref_grad), name
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("loss", [voxel_weighted_bce, voxel_weighted_ce, voxel_weighted_dice])
def test_sync_with_unreduced_losses_is_refused(loss):
    x, t = torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^sync: expected a reduced loss \('mean', 'sum'.*got reduction='none'"):
        loss(x, t if loss is voxel_weighted_ce else x, reduction="none", sync=True)
    with pytest.raises(TypeError, match=r"^sync: expected True or False, got"):
        loss(x, t if loss is voxel_weighted_ce else x, sync=1)


@pytest.mark.parametrize("module", [VoxelWeightedBCE, VoxelWeightedCE, VoxelWeightedDice])
def test_module_option_is_validated_and_shown(module):
    loss_fn = module(sync=True)
    assert loss_fn.sync is True and loss_fn.options.sync is True and "sync=True" in repr(loss_fn)
    assert "sync" not in repr(module())
    with pytest.raises(ValueError, match=r"^sync: expected a reduced loss"):
        loss_fn.reduction = "none"
    assert loss_fn.reduction == "mean"  # the failed assignment left the options as they were
    loss_fn.sync = False
    loss_fn.reduction = "none"
    with pytest.raises(TypeError, match=r"^sync: expected True or False"):
        loss_fn.sync = "yes"


@pytest.mark.parametrize(("options", "functions"), [
    (BCEOptions, [bce_options, voxel_weighted_bce, VoxelWeightedBCE]),
    (CEOptions, [ce_options, voxel_weighted_ce, VoxelWeightedCE]),
    (DiceOptions, [dice_options, voxel_weighted_dice, VoxelWeightedDice]),
])
def test_sync_is_a_keyword_only_option_defaulting_to_false(options, functions):
    assert "sync" in options._fields and options._field_defaults.get("sync") is False
    for f in functions:
        param = inspect.signature(f).parameters["sync"]
        assert param.default is False and param.kind is inspect.Parameter.KEYWORD_ONLY


def test_check_sync_names_the_loss_reductions():
    assert check_sync(False, "none") is False
    with pytest.raises(ValueError, match=r"^sync: expected a reduced loss \('mean', 'sum'\), got reduction='none'$"):
        check_sync(True, "none", ("mean", "sum", "none"))

