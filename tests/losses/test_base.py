"""The loss modules' shared base: options validated once (when built or assigned), weights as buffers."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from voxweight import VoxelWeightedBCE, VoxelWeightedCE, class_balance_weights
from voxweight.losses.bce import bce_options
from voxweight.losses.ce import ce_options


def test_assigning_an_option_revalidates_and_takes_effect():
    x, t = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) > 0.5).float()
    loss_fn = VoxelWeightedBCE()
    loss_fn.reduction = "sum"
    assert loss_fn.options == bce_options(reduction="sum")
    torch.testing.assert_close(loss_fn(x, t), F.binary_cross_entropy_with_logits(x, t, reduction="sum"))
    with pytest.raises(ValueError, match=r"reduction: expected one of .* got 'summ' \(did you mean 'sum'\?\)"):
        loss_fn.reduction = "summ"
    assert loss_fn.reduction == "sum"  # a rejected assignment leaves the options as they were
    with pytest.raises(TypeError, match=r"logits: expected True or False, got int 1"):
        loss_fn.logits = 1
    loss_fn.balance = "balanced"
    assert "balance='balanced'" in repr(loss_fn)


def test_forward_does_not_revalidate_the_options(monkeypatch):
    """The module's forward hands its validated options on: the option checks run at construction only."""
    import voxweight.losses.bce as bce

    loss_fn = VoxelWeightedBCE(balance="balanced", reduction="weighted_mean")
    calls = []
    monkeypatch.setattr(bce, "look_up_option", lambda *a: calls.append(a) or a[1])
    loss_fn(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4))
    assert calls == []


def test_ce_options_and_buffers_follow_state_dict_and_copies():
    loss_fn = VoxelWeightedCE(class_weight=[1.0, 2.0, 3.0], ignore_index=255, label_smoothing=0.1)
    assert loss_fn.options == ce_options(ignore_index=255, label_smoothing=0.1)
    assert list(loss_fn.state_dict()) == ["class_weight"]
    for clone in (copy.deepcopy(loss_fn), pickle.loads(pickle.dumps(loss_fn))):
        assert clone.options == loss_fn.options
        torch.testing.assert_close(clone.class_weight, loss_fn.class_weight)
    with pytest.raises(ValueError, match=r"label_smoothing: expected a number in \[0, 1\], got 2"):
        loss_fn.label_smoothing = 2


def test_weight_fn_builds_the_map_when_none_is_given():
    x, t = torch.randn(2, 1, 6, 6), (torch.rand(2, 1, 6, 6) > 0.8).float()
    with_fn = VoxelWeightedBCE(weight_fn=lambda target: class_balance_weights(target, spatial_dims=2))
    expected = VoxelWeightedBCE()(x, t, class_balance_weights(t, spatial_dims=2))
    torch.testing.assert_close(with_fn(x, t), expected)
    assert "weight_fn=<lambda>" in repr(with_fn)
    with pytest.raises(TypeError, match=r"weight_fn: expected a callable target -> weight map, got int"):
        VoxelWeightedCE(weight_fn=3)
