"""voxweight.checks: checked_once reads a tensor's values once per block, and never skips when they may differ."""

from __future__ import annotations

import pytest
import torch

from voxweight import VoxelWeightedDiceBCE, VoxelWeightedDiceCE
from voxweight.checks import check_range, checked_once


def _count_reads(monkeypatch):
    import voxweight.checks as checks

    reads = []
    original = checks._extremes
    monkeypatch.setattr(checks, "_extremes", lambda x: reads.append(x) or original(x))
    return reads


def test_second_check_of_the_same_tensor_and_bounds_is_skipped(monkeypatch):
    reads = _count_reads(monkeypatch)
    t = torch.rand(5)
    with checked_once():
        check_range("target", t, 0.0, 1.0, "values in [0, 1]")
        check_range("target", t, 0.0, 1.0, "values in [0, 1]")
        check_range("target", t, 0.0, 2.0, "values in [0, 2]")  # other bounds: read again
        check_range("target", t[1:], 0.0, 1.0, "values in [0, 1]")  # another view: read again
    check_range("target", t, 0.0, 1.0, "values in [0, 1]")  # outside the block: read again
    assert len(reads) == 4


def test_a_tensor_modified_in_place_is_checked_again():
    t = torch.rand(5)
    with checked_once():
        check_range("target", t, 0.0, 1.0, "values in [0, 1]")
        t[0] = 3.0
        with pytest.raises(ValueError, match=r"target: expected values in \[0, 1\], got values in \[.*, 3\]"):
            check_range("target", t, 0.0, 1.0, "values in [0, 1]")


@pytest.mark.parametrize("lambdas", [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0)])
def test_compounds_still_reject_bad_targets_and_maps_whichever_term_runs(lambdas):
    x = torch.randn(1, 2, 4, 4)
    t = torch.rand(1, 2, 4, 4)
    bad_t = t.clone()
    bad_t[0, 0, 0, 0] = 1.5
    bad_w = torch.ones(1, 1, 4, 4)
    bad_w[0, 0, 1, 1] = -1.0
    loss_fn = VoxelWeightedDiceBCE(lambda_dice=lambdas[0], lambda_bce=lambdas[1])
    with pytest.raises(ValueError, match="target: expected"):
        loss_fn(x, bad_t)
    with pytest.raises(ValueError, match="weight: expected finite non-negative"):
        loss_fn(x, t, bad_w)
    with pytest.raises(ValueError, match="target: expected class indices"):
        VoxelWeightedDiceCE(lambda_dice=lambdas[0], lambda_ce=lambdas[1])(x, torch.full((1, 4, 4), 2))
