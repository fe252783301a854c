"""balance= (class balance inside the loss, no weight map) against an explicit hand-built map (the oracle)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from voxweight import VoxelWeightedBCE, voxel_weighted_bce

FORMULAS = {
    "balanced": lambda f: (0.5 / f, 0.5 / (1 - f)),
    "inverse_frequency": lambda f: (1 / f, 1 / (1 - f)),
    "sqrt_inverse": lambda f: (f**-0.5, (1 - f) ** -0.5),
}


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 2, 5, 6, 7, generator=g, dtype=torch.float64)
    t = (torch.rand(3, 2, 5, 6, 7, generator=g) > 0.9).double()
    t[1, 0] = 0.0  # an empty volume
    t[2, 1] = 1.0  # a full volume
    return x, t


def _hand_map(t, mode, max_weight=None):
    f = t.mean(dim=(2, 3, 4), keepdim=True)
    fg, bg = FORMULAS[mode](f)
    defined = (f > 0) & (f < 1)
    fg, bg = torch.where(defined, fg, 1.0), torch.where(defined, bg, 1.0)
    if max_weight is not None:
        fg, bg = fg.clamp(max=max_weight), bg.clamp(max=max_weight)
    return bg + (fg - bg) * t


@pytest.mark.parametrize("mode", list(FORMULAS))
@pytest.mark.parametrize("reduction", ["mean", "weighted_mean", "sum", "none"])
@pytest.mark.parametrize("logits", [True, False])
def test_hard_targets_equal_explicit_map(mode, reduction, logits):
    x, t = _batch()
    inp = x if logits else torch.sigmoid(x)
    kwargs = dict(pos_weight=[2.0, 0.5], logits=logits, reduction=reduction)
    ours = voxel_weighted_bce(inp, t, balance=mode, **kwargs)
    ref = voxel_weighted_bce(inp, t, _hand_map(t, mode), **kwargs)
    torch.testing.assert_close(ours, ref)


def test_max_weight_clips_and_empty_full_volumes_get_one():
    x, t = _batch()
    ours = voxel_weighted_bce(x, t, balance="inverse_frequency", balance_max_weight=5.0, reduction="none")
    ref = voxel_weighted_bce(x, t, _hand_map(t, "inverse_frequency", 5.0), reduction="none")
    torch.testing.assert_close(ours, ref)
    plain = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    torch.testing.assert_close(ours[1, 0], plain[1, 0])
    torch.testing.assert_close(ours[2, 1], plain[2, 1])


def test_soft_targets_use_the_interpolated_weight():
    """Soft labels: (bg + (fg - bg) t) * BCE, fg/bg from the soft foreground fraction."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 4, 4, 4, generator=g, dtype=torch.float64)
    t = torch.rand(2, 1, 4, 4, 4, generator=g, dtype=torch.float64) ** 4
    fg, bg = FORMULAS["balanced"](t.mean(dim=(2, 3, 4), keepdim=True))
    s = torch.sigmoid(x)
    expected = -(bg + (fg - bg) * t) * (t * torch.log(s) + (1 - t) * torch.log1p(-s))
    torch.testing.assert_close(voxel_weighted_bce(x, t, balance="balanced", reduction="none"), expected)


def test_module_balance_equals_functional():
    x, t = _batch()
    module = VoxelWeightedBCE(balance="sqrt_inverse", reduction="weighted_mean")
    ref = voxel_weighted_bce(x, t, balance="sqrt_inverse", reduction="weighted_mean")
    torch.testing.assert_close(module(x, t), ref)
    assert "balance='sqrt_inverse'" in repr(module)


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (dict(balance="balance"), ValueError, r"balance: expected one of .*did you mean 'balanced'"),
        (dict(balance="balanced", balance_max_weight=0.0), ValueError, r"balance_max_weight: expected a finite"),
        (dict(balance="balanced", balance_max_weight="2"), TypeError, r"balance_max_weight: expected a number"),
    ],
)
def test_bad_balance_arguments(kwargs, exc, pattern):
    x, t = _batch()
    with pytest.raises(exc, match=pattern):
        voxel_weighted_bce(x, t, **kwargs)


def test_balance_needs_spatial_axes():
    with pytest.raises(ValueError, match=r"balance: expected input with spatial axes"):
        voxel_weighted_bce(torch.zeros(4, 3), torch.zeros(4, 3), balance="balanced")
