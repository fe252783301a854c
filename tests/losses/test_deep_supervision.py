"""DeepSupervision against MONAI's DeepSupervisionLoss, a hand-written sum over pre-resampled scales, torch's
interpolation (nearest-exact, area), hand-computed pooled maps and masks, and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.losses import DeepSupervisionLoss

from voxweight import VoxelWeightedBCE, VoxelWeightedCE
from voxweight.losses.deep_supervision import DeepSupervision, scale_weights_for
from voxweight.losses.resample import downsample

SIZES = [(8, 8, 8), (4, 4, 4), (2, 2, 2), (1, 1, 1)]


def _outputs(n=2, c=3, sizes=SIZES, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, *s, generator=g, dtype=dtype, requires_grad=True) for s in sizes]


def _grads(outputs):
    return [torch.zeros_like(x) if x.grad is None else x.grad for x in outputs]


# --- resampling oracles -------------------------------------------------------------------------------


@pytest.mark.parametrize("factors", [(1, 1, 1), (2, 2, 2), (4, 2, 1), (3, 1, 2), (8, 4, 2)])
def test_nearest_is_torch_nearest_exact_and_keeps_integers(factors):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 24, 8, 4, generator=g)
    size = [s // f for s, f in zip(x.shape[2:], factors, strict=True)]
    torch.testing.assert_close(downsample(x, factors, "nearest"), F.interpolate(x, size=size, mode="nearest-exact"),
                               rtol=0, atol=0)
    labels = torch.randint(0, 5, (2, 24, 8, 4), generator=g, dtype=torch.uint8)
    out = downsample(labels, factors, "nearest")
    assert out.dtype == torch.uint8
    ref = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")[:, 0]
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=0)


@pytest.mark.parametrize("factors", [(2, 2, 2), (4, 1, 2), (3, 2, 1)])
def test_area_is_torch_area_interpolation(factors):
    x = torch.rand(2, 1, 12, 8, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    size = [s // f for s, f in zip(x.shape[2:], factors, strict=True)]
    torch.testing.assert_close(downsample(x, factors, "area"), F.interpolate(x, size=size, mode="area"))
    torch.testing.assert_close(downsample(x, factors, "area"), F.avg_pool3d(x, factors))


def test_area_keeps_each_regions_weight_total_hand_computed():
    # a 4 x 4 map, two 2 x 2 regions of interest; each coarse voxel is the mean of its block
    w = torch.tensor([[1.0, 3.0, 0.0, 0.0], [5.0, 7.0, 0.0, 8.0], [2.0, 2.0, 1.0, 1.0], [2.0, 2.0, 1.0, 1.0]])
    coarse = downsample(w[None, None], [2, 2], "area")[0, 0]
    torch.testing.assert_close(coarse, torch.tensor([[4.0, 2.0], [2.0, 1.0]]))
    assert coarse.sum() * 4 == w.sum() == 36  # total kept, up to the voxel-count ratio
    assert coarse[0, 0] * 4 == 16  # the top-left region's total: 1 + 3 + 5 + 7


def test_mask_coarse_voxel_counts_only_if_all_fine_ones_do_hand_computed():
    m = torch.tensor([[True, True, True, False], [True, True, True, True],
                      [False, False, True, True], [False, False, True, True]])
    coarse = downsample(m[None, None], [2, 2], "all")[0, 0]
    assert coarse.dtype == torch.bool
    assert coarse.tolist() == [[True, False], [False, True]]


def test_axes_of_size_one_stay_for_broadcasting():
    w = torch.rand(2, 1, 8, 1, 8)
    assert downsample(w, [2, 4, 4], "area").shape == (2, 1, 4, 1, 2)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([1, 2, 3, 4]), min_size=1, max_size=3), st.integers(1, 3), st.integers(0, 2**31))
def test_area_keeps_the_total_weight_property(factors, blocks, seed):
    shape = [f * blocks for f in factors]
    w = torch.rand(2, 1, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    coarse = downsample(w, factors, "area")
    ratio = 1
    for f in factors:
        ratio *= f
    torch.testing.assert_close(coarse.sum() * ratio, w.sum())
    assert (coarse >= w.amin()).all() and (coarse <= w.amax()).all()


# --- scale weights ------------------------------------------------------------------------------------


def test_scale_weights_hand_computed():
    torch.testing.assert_close(torch.tensor(scale_weights_for("nnunet", 4)), torch.tensor([4, 2, 1, 0]) / 7.0)
    assert scale_weights_for("nnunet", 1) == [1.0]
    assert scale_weights_for("nnunet", 2) == [1.0, 0.0]
    assert scale_weights_for("monai", 6) == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625]
    assert scale_weights_for([3, 0, 1], 3) == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("levels", [1, 2, 4, 7])
def test_monai_weights_are_monais_exp_mode(levels):
    assert scale_weights_for("monai", levels) == DeepSupervisionLoss(VoxelWeightedBCE()).get_weights(levels)


# --- MONAI's DeepSupervisionLoss as the oracle -------------------------------------------------------


@pytest.mark.parametrize("scale_weights,monai_kwargs",
                         [("monai", {}), ([1.0, 0.3, 0.2, 0.1], {"weights": [1.0, 0.3, 0.2, 0.1]})])
def test_equals_monai_deep_supervision_unweighted(scale_weights, monai_kwargs):
    outputs = _outputs(dtype=torch.float32)
    twins = [x.detach().clone().requires_grad_() for x in outputs]
    target = (torch.rand(2, 3, 8, 8, 8, generator=torch.Generator().manual_seed(3)) > 0.7).float()
    ours = DeepSupervision(VoxelWeightedBCE(), scale_weights)(outputs, target)
    ref = DeepSupervisionLoss(VoxelWeightedBCE(), **monai_kwargs)(twins, target)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    for a, b in zip(outputs, twins, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_single_tensor_equals_the_loss_itself_like_monai():
    x = _outputs(sizes=[(4, 4, 4)], dtype=torch.float32)[0]
    target = (torch.rand(2, 3, 4, 4, 4) > 0.5).float()
    ours = DeepSupervision(VoxelWeightedBCE())(x, target)
    torch.testing.assert_close(ours, DeepSupervisionLoss(VoxelWeightedBCE())(x, target))
    torch.testing.assert_close(ours, VoxelWeightedBCE()(x, target))


# --- the hand-written sum on pre-resampled targets, maps and masks (exact) --------------------------


def _hand_sum(loss, outputs, target, weight, mask, sample_weight, scale_weights, target_resample):
    total = 0
    for x, s in zip(outputs, scale_weights, strict=True):
        f = 8 // x.shape[-1]
        if s == 0:
            continue
        t, w, m = target_resample(target, f), F.avg_pool3d(weight, f), F.avg_pool3d(mask.double(), f) == 1
        total = total + s * loss(x, t, w, sample_weight=sample_weight, mask=m)
    return total


def test_ce_index_targets_equal_the_hand_written_sum():
    outputs = _outputs()
    twins = [x.detach().clone().requires_grad_() for x in outputs]
    g = torch.Generator().manual_seed(4)
    target = torch.randint(0, 3, (2, 8, 8, 8), generator=g)
    weight = torch.rand(2, 1, 8, 8, 8, generator=g, dtype=torch.float64) * 5
    mask = torch.rand(2, 1, 8, 8, 8, generator=g) > 0.1
    loss = VoxelWeightedCE(class_weight=[1.0, 2.0, 5.0], reduction="weighted_mean")
    ours = DeepSupervision(loss, "nnunet")(outputs, target, weight, sample_weight=[1.0, 0.5], mask=mask)

    def nearest(t, f):  # the voxel f * i + f // 2 of each block, written out by hand
        return t[:, f // 2::f, f // 2::f, f // 2::f]

    ref = _hand_sum(loss, twins, target, weight.squeeze(1), mask.squeeze(1), [1.0, 0.5],
                    [4 / 7, 2 / 7, 1 / 7, 0.0], nearest)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    for a, b in zip(_grads(outputs), _grads(twins), strict=True):
        torch.testing.assert_close(a, b)
    assert outputs[-1].grad is None  # nnU-Net's coarsest scale has weight 0 and is not computed


def test_bce_soft_targets_area_equal_the_hand_written_sum():
    outputs = _outputs()
    twins = [x.detach().clone().requires_grad_() for x in outputs]
    g = torch.Generator().manual_seed(5)
    target = torch.rand(2, 3, 8, 8, 8, generator=g, dtype=torch.float64)
    weight = torch.rand(2, 3, 8, 8, 8, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 1, 8, 8, 8, generator=g) > 0.05
    loss = VoxelWeightedBCE(pos_weight=[3.0, 1.0, 0.5], reduction="weighted_mean")
    scale = [1.0, 0.5, 0.25, 0.125]
    ours = DeepSupervision(loss, scale, target_mode="area")(outputs, target, weight, mask=mask)
    ref = _hand_sum(loss, twins, target, weight, mask, None, scale, lambda t, f: F.avg_pool3d(t, f))
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    for a, b in zip(outputs, twins, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_weight_fn_map_is_built_at_full_resolution_then_averaged():
    def weight_fn(t):
        return 1 + 9 * t

    outputs = _outputs(c=1, sizes=SIZES[:3])
    target = (torch.rand(2, 1, 8, 8, 8, generator=torch.Generator().manual_seed(6)) > 0.8).double()
    with_fn = DeepSupervision(VoxelWeightedBCE(weight_fn=weight_fn))(outputs, target)
    given_map = DeepSupervision(VoxelWeightedBCE())(outputs, target, weight_fn(target))
    torch.testing.assert_close(with_fn, given_map)


def test_state_dict_round_trip_and_submodule():
    ds = DeepSupervision(VoxelWeightedBCE(pos_weight=[2.0, 3.0]), [1.0, 0.5])
    assert isinstance(ds.loss, torch.nn.Module) and "loss.pos_weight" in ds.state_dict()
    other = DeepSupervision(VoxelWeightedBCE(pos_weight=[1.0, 1.0]), [1.0, 0.5])
    other.load_state_dict(ds.state_dict())
    torch.testing.assert_close(other.loss.pos_weight, torch.tensor([2.0, 3.0]))
    assert "scale_weights=(1.0, 0.5)" in repr(ds) and "target_mode='nearest'" in repr(ds)


def test_scale_weight_zero_everywhere_but_one_is_that_scales_loss():
    outputs = _outputs(sizes=SIZES[:3])
    target = (torch.rand(2, 3, 8, 8, 8) > 0.5).double()
    ours = DeepSupervision(VoxelWeightedBCE(), [0, 2.0, 0])(outputs, target)
    torch.testing.assert_close(ours, 2 * VoxelWeightedBCE()(outputs[1], target[:, :, 1::2, 1::2, 1::2]))


# --- bad input --------------------------------------------------------------------------------------


def _bce_ds(**kwargs):
    return DeepSupervision(VoxelWeightedBCE(), **kwargs)


@pytest.mark.parametrize("outputs,match", [
    ([torch.zeros(2, 3, 8, 8), torch.zeros(1, 3, 4, 4)], r"outputs\[1\]: expected shape \[2, 3, \.\.\.\]"),
    ([torch.zeros(2, 3, 8, 8), torch.zeros(2, 2, 4, 4)], r"outputs\[1\]: expected shape \[2, 3, \.\.\.\]"),
    ([torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 4)], r"outputs\[1\]: expected shape .* 2 spatial dims"),
    ([torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 3, 3)],
     r"outputs\[1\]: expected spatial sizes the target's \[8, 8\] can be pooled to \(integer factors\), got \[3, 3\]"),
    ([torch.zeros(2, 3, 16, 16)], r"outputs\[0\]: expected spatial sizes"),
])
def test_bad_outputs_raise_value_error_naming_them(outputs, match):
    with pytest.raises(ValueError, match=match):
        _bce_ds()(outputs, torch.zeros(2, 3, 8, 8))


def test_bad_outputs_types():
    with pytest.raises(TypeError, match=r"outputs: expected a tensor or a non-empty list .* \(empty\)"):
        _bce_ds()([], torch.zeros(2, 3, 8, 8))
    with pytest.raises(TypeError, match=r"outputs\[1\]: expected a torch.Tensor, got array of shape"):
        _bce_ds()([torch.zeros(2, 3, 8, 8), np.zeros((2, 3, 4, 4))], torch.zeros(2, 3, 8, 8))


def test_unknown_options_say_did_you_mean():
    with pytest.raises(ValueError, match=r"scale_weights: expected one of 'nnunet', 'monai', got 'nnUnet' "
                                         r"\(did you mean 'nnunet'\?\)"):
        _bce_ds(scale_weights="nnUnet")
    with pytest.raises(ValueError, match=r"target_mode: .* got 'aera' \(did you mean 'area'\?\)"):
        _bce_ds(target_mode="aera")


@pytest.mark.parametrize("weights", [[1.0, -0.5], [0, 0, 0], [], [1.0, float("nan")]])
def test_negative_zero_or_empty_scale_weights_raise(weights):
    with pytest.raises(ValueError, match="scale_weights: expected finite non-negative numbers, not all zero"):
        _bce_ds(scale_weights=weights)


@pytest.mark.parametrize("weights", [3, [1.0, "a"], [True, 1.0]])
def test_scale_weights_of_the_wrong_type_raise_type_error(weights):
    with pytest.raises(TypeError, match="scale_weights: expected 'nnunet' or 'monai' or a sequence of numbers"):
        _bce_ds(scale_weights=weights)


def test_wrong_number_of_scale_weights():
    with pytest.raises(ValueError, match=r"scale_weights: expected one weight per output \(2 outputs\), got 3"):
        _bce_ds(scale_weights=[1, 1, 1])([torch.zeros(2, 3, 8), torch.zeros(2, 3, 4)], torch.zeros(2, 3, 8))


def test_other_bad_arguments():
    x, t = [torch.zeros(2, 3, 8), torch.zeros(2, 3, 4)], torch.zeros(2, 3, 8)
    with pytest.raises(TypeError, match="loss: expected a loss module"):
        DeepSupervision(F.binary_cross_entropy_with_logits)
    with pytest.raises(TypeError, match="target: expected a floating-point target with target_mode='area'"):
        DeepSupervision(VoxelWeightedCE(), target_mode="area")(x, torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"weight: expected spatial sizes \[8\] .* or 1, got shape \[2, 1, 6\]"):
        _bce_ds()(x, t, torch.ones(2, 1, 6))
    with pytest.raises(TypeError, match="mask: expected a bool tensor"):
        _bce_ds()(x, t, mask=torch.ones(2, 1, 8))
    with pytest.raises(TypeError, match="weight: expected a real-valued tensor"):
        _bce_ds()(x, t, torch.ones(2, 1, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"target: expected 3 dims \(or 2 for class indices\)"):
        _bce_ds()(x, torch.zeros(8))
    with pytest.raises(ValueError, match="loss: expected results of the same shape at every scale"):
        DeepSupervision(VoxelWeightedBCE(reduction="none"), [1.0, 1.0])(x, t)


def test_index_targets_with_a_channel_axis_equal_those_without():
    outputs = _outputs(sizes=SIZES[:3])
    y = torch.randint(0, 3, (2, 8, 8, 8), generator=torch.Generator().manual_seed(7), dtype=torch.int16)
    ds = DeepSupervision(VoxelWeightedCE(), "monai")
    torch.testing.assert_close(ds(outputs, y.unsqueeze(1)), ds(outputs, y))


def test_gradcheck_float64_through_every_scale():
    outputs = [x.detach()[:1, :2].clone().requires_grad_() for x in _outputs(sizes=[(4, 4), (2, 2), (1, 1)])]
    g = torch.Generator().manual_seed(8)
    target = (torch.rand(1, 2, 4, 4, generator=g) > 0.5).double()
    weight = torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64)
    ds = DeepSupervision(VoxelWeightedBCE(reduction="weighted_mean"), "monai")
    assert torch.autograd.gradcheck(lambda *xs: ds(list(xs), target, weight), outputs)


@pytest.mark.parametrize("sizes", [[(12,), (6,), (4,), (2,)], [(12,), (4,), (6,), (3,)], [(12,), (3,), (12,)]])
def test_maps_pooled_scale_after_scale_equal_torch_pooling_from_full_resolution(sizes):
    """Nested factors pool the previous scale's map, others the full one: both equal torch's area/min pooling."""
    outputs = _outputs(c=2, sizes=sizes)
    g = torch.Generator().manual_seed(8)
    target = (torch.rand(2, 2, 12, generator=g) > 0.5).double()
    weight = torch.rand(2, 1, 12, generator=g, dtype=torch.float64) * 4
    mask = torch.rand(2, 1, 12, generator=g) > 0.1
    loss = VoxelWeightedBCE(reduction="weighted_mean")
    scale = [1.0, 0.5, 0.25, 0.125][:len(sizes)]
    ours = DeepSupervision(loss, scale, target_mode="area")(outputs, target, weight, mask=mask)
    ref = 0
    for x, s in zip(outputs, scale, strict=True):
        f = 12 // x.shape[-1]
        m = F.avg_pool1d(mask.double(), f) == 1
        ref = ref + s * loss(x, F.avg_pool1d(target, f), F.avg_pool1d(weight, f), mask=m)
    torch.testing.assert_close(ours, ref)
