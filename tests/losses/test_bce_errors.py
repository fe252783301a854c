"""Every bad input to the loss gives a clear error naming the argument ("expected ..., got ...")."""

from __future__ import annotations

import pytest
import torch

import voxweight
from voxweight import VoxelWeightedBCE, debias_logits, voxel_weighted_bce

X = torch.zeros(2, 3, 4, 4)
T = torch.zeros(2, 3, 4, 4)
NAN = float("nan")
INF = float("inf")

CASES = [
    # (id, kwargs overriding input/target/..., exception, regex)
    ("target-shape", dict(target=torch.zeros(2, 3, 4, 5)), ValueError, r"target: expected the shape"),
    ("target-missing-channel", dict(input=torch.zeros(2, 1, 4, 4), target=torch.zeros(2, 4, 4)),
     ValueError, r"target\.unsqueeze\(1\)"),
    ("target-above-one", dict(target=torch.full((2, 3, 4, 4), 2.0)), ValueError,
     r"target: expected values in \[0, 1\]"),
    ("target-negative-int", dict(target=-torch.ones(2, 3, 4, 4, dtype=torch.int64)), ValueError, r"target"),
    ("target-nan", dict(target=torch.full((2, 3, 4, 4), NAN)), ValueError, r"target"),
    ("target-not-tensor", dict(target=[[0.0]]), TypeError, r"target: expected a torch\.Tensor"),
    ("input-int", dict(input=torch.zeros(2, 3, 4, 4, dtype=torch.int64)), TypeError,
     r"input: expected a floating-point tensor"),
    ("input-numpy", dict(input=X.numpy()), TypeError, r"input: expected a torch\.Tensor"),
    ("probabilities-out-of-range", dict(input=torch.full((2, 3, 4, 4), 1.5), logits=False), ValueError,
     r"input: expected probabilities in \[0, 1\]"),
    ("pos_weight-length", dict(pos_weight=[1.0, 2.0]), ValueError, r"pos_weight: expected one value per channel \(3"),
    ("class_weight-length", dict(class_weight=torch.ones(4)), ValueError,
     r"class_weight: expected one value per channel"),
    ("pos_weight-negative", dict(pos_weight=[1.0, -2.0, 1.0]), ValueError, r"pos_weight: expected finite non-negative"),
    ("pos_weight-inf", dict(pos_weight=INF), ValueError, r"pos_weight: expected finite non-negative"),
    ("class_weight-nan", dict(class_weight=[1.0, NAN, 1.0]), ValueError, r"class_weight: expected finite"),
    ("pos_weight-string", dict(pos_weight="balanced"), TypeError, r"pos_weight: expected a number"),
    ("pos_weight-bad-ndim", dict(pos_weight=torch.ones(3, 1)), ValueError, r"pos_weight: expected shape"),
    ("sample_weight-length", dict(sample_weight=[1.0, 2.0, 3.0]), ValueError, r"sample_weight: expected shape \[2\]"),
    ("sample_weight-negative", dict(sample_weight=[1.0, -1.0]), ValueError, r"sample_weight: expected finite"),
    ("weight-shape", dict(weight=torch.ones(2, 3, 4, 5)), ValueError, r"weight: expected shape \[2, 3, 4, 4\]"),
    ("weight-missing-channel", dict(input=torch.zeros(2, 1, 4, 4), target=torch.zeros(2, 1, 4, 4),
                                    weight=torch.ones(2, 4, 4)), ValueError, r"weight\.unsqueeze\(1\)"),
    ("weight-negative", dict(weight=-torch.ones(2, 1, 4, 4)), ValueError, r"weight: expected finite non-negative"),
    ("weight-inf", dict(weight=torch.full((2, 1, 4, 4), INF)), ValueError, r"weight: expected finite"),
    ("weight-float", dict(weight=2.0), TypeError, r"weight: expected a torch\.Tensor"),
    ("weight-bool", dict(weight=torch.ones(2, 1, 4, 4, dtype=torch.bool)), TypeError, r"weight: expected a real"),
    ("mask-float", dict(mask=torch.ones(2, 1, 4, 4)), TypeError, r"mask: expected a bool tensor"),
    ("mask-shape", dict(mask=torch.ones(4, 4, dtype=torch.bool)), ValueError, r"mask: expected shape"),
    ("reduction-typo", dict(reduction="meen"), ValueError, r"reduction: expected one of .*did you mean 'mean'"),
    ("reduction-weighted", dict(reduction="weighted"), ValueError, r"did you mean 'weighted_mean'"),
    ("logits-string", dict(logits="yes"), TypeError, r"logits: expected True or False"),
]


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_functional_raises(kwargs, exc, pattern):
    args = dict(input=X, target=T)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        voxel_weighted_bce(args.pop("input"), args.pop("target"), args.pop("weight", None), **args)


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (dict(pos_weight=[-1.0]), ValueError, r"pos_weight: expected finite non-negative"),
        (dict(class_weight="x"), TypeError, r"class_weight: expected a number"),
        (dict(reduction="avg"), ValueError, r"reduction: expected one of"),
        (dict(weight_fn=3), TypeError, r"weight_fn: expected a callable"),
        (dict(logits=1), TypeError, r"logits: expected True or False"),
    ],
)
def test_module_constructor_raises(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        VoxelWeightedBCE(**kwargs)


def test_module_forward_checks_channel_length():
    with pytest.raises(ValueError, match=r"pos_weight: expected one value per channel \(3"):
        VoxelWeightedBCE(pos_weight=[1.0, 2.0])(X, T)


def test_value_check_mode_typo():
    with pytest.raises(ValueError, match=r"mode: expected one of .*did you mean 'sync'"):
        voxweight.set_value_checks("snyc")


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (dict(pos_weight=0.0), ValueError, r"pos_weight: expected finite values > 0"),
        (dict(pos_weight=[1.0, -1.0, 2.0]), ValueError, r"pos_weight: expected finite values > 0"),
        (dict(pos_weight=[1.0, 2.0]), ValueError, r"pos_weight: expected one value per channel"),
        (dict(pos_weight=2.0, bg_weight=0.0), ValueError, r"bg_weight: expected finite values > 0"),
        (dict(pos_weight=None), TypeError, r"pos_weight: expected a number"),
        (dict(pos_weight=2.0, channel_dim=4), ValueError, r"channel_dim: expected an axis"),
        (dict(pos_weight=2.0, channel_dim=1.0), TypeError, r"channel_dim: expected an int"),
    ],
)
def test_debias_raises(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        debias_logits(X, **kwargs)


def test_debias_rejects_integer_logits():
    with pytest.raises(TypeError, match=r"logits: expected a floating-point tensor"):
        debias_logits(torch.zeros(2, 3, dtype=torch.int32), 2.0)


@pytest.mark.cuda
def test_device_mismatch_is_named():
    with pytest.raises(ValueError, match=r"weight: expected a tensor on cuda"):
        voxel_weighted_bce(X.cuda(), T.cuda(), torch.ones(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"target: expected a tensor on cpu"):
        voxel_weighted_bce(X, T.cuda())


def test_device_mismatch_meta_device():
    """Without CUDA, the meta device still exercises the device check (metadata only)."""
    with pytest.raises(ValueError, match=r"target: expected a tensor on cpu \(where input is\), got one on meta"):
        voxel_weighted_bce(X, torch.zeros(2, 3, 4, 4, device="meta"))
    with pytest.raises(ValueError, match=r"pos_weight: expected a tensor on cpu"):
        voxel_weighted_bce(X, T, pos_weight=torch.ones(3, device="meta"))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16,
                                   torch.uint32, torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_range_check_extremes_match_aminmax_for_every_dtype(dtype):
    """Oracle: torch.aminmax of a float64 copy; one value out of range anywhere is reported with the range."""
    from voxweight.checks import _extremes, check_range

    values = torch.tensor([[0, 1, 1], [1, 0, 1]]).to(dtype)
    lo, hi = _extremes(values)
    assert (lo.item(), hi.item()) == tuple(v.item() for v in torch.aminmax(values.to(torch.float64)))
    check_range("target", values, 0.0, 1.0, "values in [0, 1]")  # in range: no error
    values[1, 2] = 3
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\], got values in \[0, 3\]"):
        check_range("target", values, 0.0, 1.0, "values in [0, 1]")
    if dtype.is_floating_point:
        values[0, 0] = NAN
        with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\], got values in \[nan, nan\]"):
            check_range("target", values, 0.0, 1.0, "values in [0, 1]")
