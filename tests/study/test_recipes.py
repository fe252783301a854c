"""The study's recipes: each builds a finite loss with a gradient (degenerate labels too) equal to its oracle.

Oracles: torch's BCE, MONAI's DiceCELoss and SoftclDiceLoss, and Dice + BCE re-derived by hand with the maps of
the numpy backends (boundary_weights, class_signed_distance, tubed_skeleton) and BoundaryLossSchedule's weights.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, SoftclDiceLoss

from voxweight.losses import BoundaryLossSchedule, SkeletonRecallLoss
from voxweight.maps import boundary_weights, class_signed_distance, tubed_skeleton
from voxweight.study import recipe_losses
from voxweight.study import recipes as R
from voxweight.study.recipes import (
    DEFAULT_RECIPES,
    RECIPES,
    TUBULAR_RECIPES,
    RecipeContext,
    get_recipes,
    recipe_help,
)

SHAPE = (2, 1, 12, 12, 8)
SPACING = (1.0, 1.0, 2.0)  # anisotropic, as NIfTI often is
CTX = RecipeContext(SPACING, 0.2, 0.02, 100)


def _label(kind: str, rng: np.random.Generator) -> torch.Tensor:
    t = np.zeros(SHAPE, np.float32)
    if kind == "random":
        t[:, :, 2:9, 3:10, 2:6] = 1
        t[1, :, 4:6, 4:6] = 0
        t[rng.random(SHAPE) < 0.05] = 1
    elif kind == "full":
        t[:] = 1
    elif kind == "one":
        t[0, 0, 5, 5, 4] = 1
    return torch.from_numpy(t)


def _touching() -> tuple[torch.Tensor, torch.Tensor]:
    """Sample 0: two boxes touching face to face (one component, two instances); sample 1: two apart."""
    inst = np.zeros(SHAPE, np.int64)
    inst[0, 0, 2:6, 3:9, 2:6], inst[0, 0, 6:10, 3:9, 2:6] = 1, 2
    inst[1, 0, 1:4, 2:6, 2:6], inst[1, 0, 8:11, 2:6, 2:6] = 1, 2
    return torch.from_numpy((inst > 0).astype(np.float32)), torch.from_numpy(inst)


def _dice(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Soft Dice per sample on sigmoid(x), smoothing 1e-5 (VoxelWeightedDice's and MONAI's), averaged."""
    p, axes = torch.sigmoid(x), tuple(range(1, x.ndim))
    return (1 - (2 * (p * t).sum(axes) + 1e-5) / (p.sum(axes) + t.sum(axes) + 1e-5)).mean()


def _weighted_bce(x: torch.Tensor, t: torch.Tensor, w: np.ndarray) -> torch.Tensor:
    w = torch.from_numpy(w)
    return (w * F.binary_cross_entropy_with_logits(x, t, reduction="none")).sum() / w.sum()


def _loss(name: str, x: torch.Tensor, t: torch.Tensor, inst: torch.Tensor | None = None, step: int = 0,
          ctx: RecipeContext = CTX) -> torch.Tensor:
    return RECIPES[name].build(ctx)(x, t, inst, step)


@pytest.mark.parametrize("kind", ["random", "empty", "full", "one"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_finite_with_a_finite_gradient(name, kind, rng):
    """Random, empty, full and one-voxel labels, with and without instance maps, early and late steps."""
    t = _label(kind, rng)
    for inst, step in ((None, 0), (t.long(), CTX.total_steps - 1)):
        x = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)).requires_grad_()
        loss = _loss(name, x, t, inst, step)
        assert loss.shape == () and torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_takes_bfloat16_logits(name, rng):
    x = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)).bfloat16().requires_grad_()
    loss = _loss(name, x, _label("random", rng), step=50)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("soft", [False, True])
def test_bce_is_torchs(soft, rng):
    x = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32))
    t = torch.from_numpy(rng.random(SHAPE).astype(np.float32)) if soft else _label("random", rng)
    assert torch.allclose(_loss("bce", x, t), F.binary_cross_entropy_with_logits(x, t), rtol=1e-6, atol=0)
    assert RECIPES["bce"].shift(CTX) == 1.0


def test_bce_pos_weight_balances_the_crops(rng):
    """pos_weight (1 - p)/p = 4 for p = 0.2: torch's BCE with that pos_weight, and the shift is 4."""
    x, t = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)), _label("random", rng)
    expected = F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor([4.0]))
    assert torch.allclose(_loss("bce_pos_weight", x, t), expected, rtol=1e-6, atol=0)
    assert RECIPES["bce_pos_weight"].shift(CTX) == pytest.approx(4.0)
    assert RECIPES["bce_pos_weight"].shift(CTX._replace(crop_prior=0.5)) == pytest.approx(1.0)


def test_dice_bce_is_monais_dice_ce_for_one_channel(rng):
    x, t = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)), _label("random", rng)
    assert torch.allclose(_loss("dice_bce", x, t), DiceCELoss(sigmoid=True)(x, t), rtol=1e-5)
    assert torch.allclose(_loss("dice_bce", x, t), _dice(x, t) + F.binary_cross_entropy_with_logits(x, t))


def test_focal_is_the_focal_factor_times_bce(rng):
    x, t = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)), _label("random", rng)
    s = torch.sigmoid(x)
    miss = s * (1 - t) + (1 - s) * t
    expected = (miss**R.FOCAL_GAMMA * F.binary_cross_entropy_with_logits(x, t, reduction="none")).mean()
    assert torch.allclose(_loss("focal", x, t), expected, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:boundary_weights. mode='unet' found fewer:UserWarning")  # the oracle's
@pytest.mark.parametrize("backend", ["auto", "torch"])  # "torch": the accelerator's path, here on the CPU
@pytest.mark.parametrize("with_instances", [False, True])
def test_unet_map_recipe_is_dice_plus_bce_weighted_by_the_numpy_map(with_instances, backend, rng, monkeypatch):
    monkeypatch.setattr(recipe_losses, "MAP_BACKEND", backend)
    t, inst = _touching()
    x = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32))
    w = boundary_weights(t.numpy(), mode="unet", w0=R.UNET_W0, sigma=R.UNET_SIGMA_MM, spacing=SPACING,
                         instances=inst.numpy() if with_instances else None, backend="scipy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recipe silences the "fewer than two objects" warning of crops
        loss = _loss("dice_bce_unet_map", x, t, inst if with_instances else None)
    assert torch.allclose(loss, _dice(x, t) + _weighted_bce(x, t, w), rtol=1e-5)
    assert RECIPES["dice_bce_unet_map"].shift(CTX) == 1.0


def test_unet_map_recipe_separates_touching_instances(rng):
    """Touching boxes are one component (an all-ones map in sample 0) but two instances: the losses differ."""
    t, inst = _touching()
    x = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32))
    with_ids = boundary_weights(t.numpy(), sigma=R.UNET_SIGMA_MM, spacing=SPACING, instances=inst.numpy())
    assert with_ids[0].max() > 2
    assert not torch.allclose(_loss("dice_bce_unet_map", x, t, inst), _loss("dice_bce_unet_map", x, t, None))


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_distance_map_recipe_is_dice_plus_bce_weighted_by_the_numpy_map(backend, rng, monkeypatch):
    monkeypatch.setattr(recipe_losses, "MAP_BACKEND", backend)
    x, t = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)), _label("random", rng)
    w = boundary_weights(t.numpy(), mode="distance", w0=R.DISTANCE_W0, sigma=R.DISTANCE_SIGMA_MM, spacing=SPACING,
                         backend="scipy")
    assert torch.allclose(_loss("dice_bce_distance_map", x, t), _dice(x, t) + _weighted_bce(x, t, w), rtol=1e-5)


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_boundary_loss_recipe_follows_the_schedule_over_the_budget(backend, rng, monkeypatch):
    """loss(step) = a_e (Dice + BCE) + b_e mean(sigmoid(x) phi), e = step * 10 // 100, (a, b) the schedule's."""
    monkeypatch.setattr(recipe_losses, "MAP_BACKEND", backend)
    x, t = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)), _label("random", rng)
    loss_fn = RECIPES["dice_bce_boundary_loss"].build(CTX)
    schedule = BoundaryLossSchedule(step=R.BOUNDARY_STEP, floor=R.BOUNDARY_FLOOR)
    phi = torch.from_numpy(class_signed_distance(t.numpy() > 0.5, spacing=SPACING, backend="scipy"))
    region, boundary = _dice(x, t) + F.binary_cross_entropy_with_logits(x, t), (torch.sigmoid(x) * phi).mean()
    values = []
    for step in (0, 9, 10, 55, 99):
        a, b = schedule.weights(step * R.BOUNDARY_EPOCHS // CTX.total_steps)
        assert loss_fn.weights(step) == (a, b)
        values.append(loss_fn(x, t, None, step))
        assert torch.allclose(values[-1], a * region + b * boundary, rtol=1e-5, atol=1e-6)
    assert torch.equal(values[0], values[1]) and not torch.allclose(values[1], values[2])
    assert torch.equal(values[0], _loss("dice_bce", x, t))  # b = 0 in the first epoch
    assert loss_fn.weights(99) == pytest.approx((0.55, 0.45))
    assert loss_fn.epoch(CTX.total_steps + 50) == R.BOUNDARY_EPOCHS - 1  # past the budget: the last epoch
    short = RECIPES["dice_bce_boundary_loss"].build(CTX._replace(total_steps=3))  # fewer steps than epochs
    assert [short.epoch(s) for s in range(3)] == [0, 3, 6]


def test_skeleton_recall_recipe_is_dice_bce_plus_the_recall_of_the_tubed_skeleton(rng):
    x, t = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)), _label("random", rng)
    s = torch.from_numpy(tubed_skeleton(t.numpy() > 0.5, tube_radius=R.SKELETON_TUBE_RADIUS).astype(np.float32))
    assert s.sum() > 0
    p, axes = torch.sigmoid(x), (1, 2, 3, 4)
    recall = ((p * s).sum(axes) + 1e-5) / (s.sum(axes) + 1e-5)
    expected = _dice(x, t) + F.binary_cross_entropy_with_logits(x, t) + R.SKELETON_WEIGHT * (1 - recall.mean())
    assert torch.allclose(_loss("dice_ce_skeleton_recall", x, t), expected, rtol=1e-5)
    two_class = torch.cat([torch.zeros_like(x), x], dim=1)  # softmax([0, x]) = (1 - sigmoid(x), sigmoid(x))
    softmax = SkeletonRecallLoss(smooth=1e-5)(two_class, s.long())
    assert torch.allclose(softmax, 1 - recall.mean(), rtol=1e-5)
    assert torch.allclose(F.cross_entropy(two_class, t[:, 0].long()), F.binary_cross_entropy_with_logits(x, t))


def test_cldice_recipe_is_dice_bce_plus_monais_soft_cldice(rng):
    x, t = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32)), _label("random", rng)
    cldice = SoftclDiceLoss(iter_=R.CLDICE_ITERATIONS, sigmoid=True)(x, t)
    expected = DiceCELoss(sigmoid=True)(x, t) + R.CLDICE_WEIGHT * cldice
    assert torch.allclose(_loss("cldice", x, t), expected, rtol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_runs_on_cuda_as_on_the_cpu(name, rng):
    t, inst = _touching()
    x = torch.from_numpy(rng.normal(0, 2, SHAPE).astype(np.float32))
    cpu = _loss(name, x, t, inst, 60)
    xc = x.cuda().requires_grad_()
    gpu = _loss(name, xc, t.cuda(), inst.cuda(), 60)
    gpu.backward()
    assert gpu.device.type == "cuda" and torch.isfinite(xc.grad).all()
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)


def test_bad_batches_and_contexts_are_refused_by_name(rng):
    loss_fn = RECIPES["dice_bce_unet_map"].build(CTX)
    x, t = torch.zeros(SHAPE), _label("random", rng)
    with pytest.raises(ValueError, match="logits: expected \\[N, 1, \\*spatial\\]"):
        loss_fn(torch.zeros(2, 2, 12, 12, 8), torch.zeros(2, 2, 12, 12, 8), None, 0)
    with pytest.raises(ValueError, match="label: expected the logits' shape"):
        loss_fn(x, t[:1], None, 0)
    with pytest.raises(TypeError, match="instances: expected integer"):
        loss_fn(x, t, t, 0)
    with pytest.raises(ValueError, match="step: expected an integer >= 0"):
        loss_fn(x, t, None, -1)
    with pytest.raises(TypeError, match="step"):
        loss_fn(x, t, None, 1.5)
    with pytest.raises(TypeError, match="label: expected a floating-point tensor"):
        loss_fn(x, t.long(), None, 0)
    for bad, field in ((CTX._replace(crop_prior=1.0), "crop_prior"), (CTX._replace(dataset_prior=0), "dataset_prior"),
                       (CTX._replace(total_steps=0), "total_steps"), (CTX._replace(spacing=(1.0, -1.0, 1.0)),
                                                                      "spacing")):
        for recipe in RECIPES.values():
            with pytest.raises(ValueError, match=field):
                recipe.build(bad)
    with pytest.raises(ValueError, match="crop_prior"):
        RECIPES["bce_pos_weight"].shift(CTX._replace(crop_prior=0.0))
    numpy_ctx = RecipeContext(tuple(np.float32(v) for v in SPACING), np.float32(0.25), np.float64(0.02), np.int64(9))
    assert R.check_context(numpy_ctx) == (SPACING, 0.25, 0.02, 9)  # numpy numbers, as data loaders give them
    with pytest.raises(TypeError, match="ctx: expected a RecipeContext"):
        RECIPES["bce"].build((SPACING, 0.2, 0.02, 100))


def test_get_recipes_keeps_the_order_and_refuses_duplicates_and_typos():
    assert [r.name for r in get_recipes(["focal", "bce", "dice_bce"])] == ["focal", "bce", "dice_bce"]
    assert list(RECIPES)[:7] == ["bce", "bce_pos_weight", "dice_bce", "dice_bce_unet_map", "dice_bce_distance_map",
                                 "dice_bce_boundary_loss", "dice_ce_skeleton_recall"]
    with pytest.raises(ValueError, match="distinct names, got 'bce' twice"):
        get_recipes(["bce", "dice_bce", "bce"])
    with pytest.raises(ValueError, match="did you mean 'dice_bce_unet_map'") as info:
        get_recipes(["bce", "dice_bce_unet_mpa"])
    assert all(repr(name) in str(info.value) for name in RECIPES)
    with pytest.raises(TypeError, match="sequence of recipe names"):
        get_recipes("bce")
    with pytest.raises(ValueError, match="at least one"):
        get_recipes([])


def test_defaults_and_help():
    assert set(DEFAULT_RECIPES) == {n for n, r in RECIPES.items() if r.data in ("any", "instances")}
    assert "bce" in DEFAULT_RECIPES and "dice_bce_unet_map" in DEFAULT_RECIPES
    assert TUBULAR_RECIPES[:len(DEFAULT_RECIPES)] == DEFAULT_RECIPES
    assert set(TUBULAR_RECIPES) - set(DEFAULT_RECIPES) == {"dice_ce_skeleton_recall", "cldice"}
    assert all(r.data in R.DATA_KINDS and r.name == n and "\n" not in r.summary for n, r in RECIPES.items())
    lines = recipe_help().splitlines()
    for recipe in RECIPES.values():
        assert any(line.split()[:2] == [recipe.name, recipe.data] and recipe.summary in line for line in lines)
