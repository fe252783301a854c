"""voxweight bench cases "ds" and "compound" at tiny sizes (no timing assertions).

Oracles: float64 brute force (block loops for the resampling, the BCE formula for deep supervision),
MONAI's ``DiceLoss(sigmoid=True)`` plus torch's ``binary_cross_entropy_with_logits`` for the compound loss
without a map, and the cases' own agreement checks, which must fail when the two sides differ.
"""

from __future__ import annotations

import itertools

import monai.losses
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import voxweight.bench.compound as bench_compound_module
from voxweight import DeepSupervision, VoxelWeightedBCE, VoxelWeightedDiceBCE
from voxweight.bench import CASES, BenchConfig, run_bench
from voxweight.bench.compound import DS_FACTORS, DS_SCALE_WEIGHTS, bench_compound, ds_inputs, pre_resample
from voxweight.cli import main
from voxweight.losses.resample import downsample


def brute_resample(t: np.ndarray, w: np.ndarray, m: np.ndarray, f: int):
    """Block by block in float64: the block's voxel at offset f // 2, the mean of the map, all of the mask."""
    coarse = [s // f for s in t.shape[2:]]
    tt, ww, mm = (np.zeros(a.shape[:2] + tuple(coarse), dtype=d) for a, d in ((t, float), (w, float), (m, bool)))
    for i, j, k in itertools.product(*(range(c) for c in coarse)):
        block = (..., slice(i * f, (i + 1) * f), slice(j * f, (j + 1) * f), slice(k * f, (k + 1) * f))
        tt[..., i, j, k] = t[..., i * f + f // 2, j * f + f // 2, k * f + f // 2]
        ww[..., i, j, k] = w[block].astype(np.float64).mean(axis=(-3, -2, -1))
        mm[..., i, j, k] = m[block].all(axis=(-3, -2, -1))
    return tt, ww, mm


def brute_bce(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor, m: torch.Tensor) -> float:
    """``sum(w * bce) / counted elements`` over the mask broadcast to the channels, float64."""
    x, t, w = x.double(), t.double(), w.double()
    s = torch.sigmoid(x)
    element = -w * (t * torch.log(s) + (1 - t) * torch.log1p(-s))
    keep = m.expand_as(x)
    return float(element[keep].sum() / keep.sum()) if keep.any() else 0.0  # an empty selection gives 0


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_pre_resample_matches_block_brute_force_and_voxweight(factor):
    """The baseline's torch resampling = block loops (float64) = voxweight's own ``downsample``."""
    g = torch.Generator().manual_seed(factor)
    t = (torch.rand(2, 2, 8, 8, 8, generator=g) > 0.5).float()
    w = torch.rand(2, 1, 8, 8, 8, generator=g) * 5
    m = torch.rand(2, 1, 8, 8, 8, generator=g) > 0.1
    rt, rw, rm = pre_resample(t, w, m, factor)
    bt, bw, bm = brute_resample(t.numpy(), w.numpy(), m.numpy(), factor)
    np.testing.assert_array_equal(rt.numpy(), bt)
    np.testing.assert_allclose(rw.numpy(), bw, rtol=1e-6)
    np.testing.assert_array_equal(rm.numpy(), bm)
    assert rt.is_contiguous() and rm.dtype == torch.bool
    f3 = [factor] * 3
    torch.testing.assert_close(downsample(w, f3, "area"), rw)
    assert torch.equal(downsample(t, f3, "nearest"), rt) and torch.equal(downsample(m, f3, "all"), rm)


def test_ds_inputs_and_deep_supervision_match_float64_brute_force():
    """The bench's data, and the sum over scales (BCE at each, from the block brute force) in float64."""
    outputs, t, w, m = ds_inputs(BenchConfig(size=16))
    assert [tuple(o.shape) for o in outputs] == [(2, 2, 16 // f, 16 // f, 16 // f) for f in DS_FACTORS]
    assert t.shape == (2, 2, 16, 16, 16) and w.shape == m.shape == (2, 1, 16, 16, 16)
    assert not m[:, :, :2].any() and m[1, :, 2:].all() and not m[0].all() and 0 < float(t.mean()) < 0.1
    expected = 0.0
    for s, x, f in zip(DS_SCALE_WEIGHTS, outputs, DS_FACTORS, strict=True):
        bt, bw, bm = (torch.from_numpy(a) for a in brute_resample(t.numpy(), w.numpy(), m.numpy(), f))
        expected += s * brute_bce(x, bt, bw, bm)
    ds = DeepSupervision(VoxelWeightedBCE(), DS_SCALE_WEIGHTS)  # the case's candidate, as the case builds it
    assert float(ds(outputs, t, w, mask=m)) == pytest.approx(expected, rel=1e-5)


def test_ds_case_is_registered_and_well_formed():
    (result,) = run_bench(BenchConfig(size=8, repeats=1), cases=["ds"])
    assert result.operation == "deep supervision [2,2,8^3] x4 fwd+bwd"
    assert result.baseline == "sum of losses, pre-resampled" and result.max_ratio == 1.10
    assert result.baseline_ms > 0 and result.voxweight_ms > 0 and result.unit == "ms"
    assert result.paired_ratio is not None and result.ratio == result.paired_ratio > 0
    assert "agree" in result.note and "rounded" not in result.note
    (rounded,) = run_bench(BenchConfig(size=12, repeats=1), cases=["ds"])
    assert "[2,2,8^3]" in rounded.operation and "edge 8" in rounded.note


def test_ds_case_refuses_to_time_different_computations(monkeypatch):
    """A baseline that resamples the map differently (nearest, not the block mean) is caught before timing."""

    def wrong(target, weight, mask, factor):
        t, _, m = pre_resample(target, weight, mask, factor)
        h = factor // 2
        return t, weight[..., h::factor, h::factor, h::factor], m

    monkeypatch.setattr(bench_compound_module, "pre_resample", wrong)
    with pytest.raises(RuntimeError, match=r"ds (loss|gradient).*disagree"):
        run_bench(BenchConfig(size=8, repeats=1), cases=["ds"])


@settings(max_examples=15, deadline=None)
@given(channels=st.integers(1, 3), edge=st.integers(1, 6), soft=st.booleans(), seed=st.integers(0, 2**16))
def test_dice_bce_without_map_is_monai_dice_plus_torch_bce(channels, edge, soft, seed):
    """Oracle: MONAI DiceLoss(sigmoid=True) + F.binary_cross_entropy_with_logits, values and gradients."""
    g = torch.Generator().manual_seed(seed)
    shape = (2, channels, edge, edge + 1, 3)
    x = (3 * torch.randn(shape, generator=g)).requires_grad_()
    t = torch.rand(shape, generator=g)
    t = t if soft else (t > 0.7).float()
    ours = VoxelWeightedDiceBCE()(x, t)
    (grad_ours,) = torch.autograd.grad(ours, x)
    reference = monai.losses.DiceLoss(sigmoid=True)(x, t) + F.binary_cross_entropy_with_logits(x, t)
    (grad_ref,) = torch.autograd.grad(reference, x)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=1e-4, atol=1e-7)


def test_compound_case_refuses_a_baseline_that_differs(monkeypatch):
    """The no-map check runs first (before any compiling): a squared-denominator MONAI Dice is caught."""
    squared = monai.losses.DiceLoss

    monkeypatch.setattr(monai.losses, "DiceLoss", lambda **kw: squared(**kw, squared_pred=True))
    with pytest.raises(RuntimeError, match=r"without a map vs MONAI DiceLoss \+ BCE.*disagree"):
        bench_compound(BenchConfig(size=8, repeats=1))


@pytest.mark.slow
def test_compound_case_well_formed():
    """Eager and fused time rows, then the memory row where the resident set can be measured (compiles: slow)."""
    results = run_bench(BenchConfig(size=8, repeats=1), cases=["compound"])
    eager, fused, *memory = results
    assert eager.operation == "DiceBCE fwd+bwd [2,2,8^3], voxel map"
    assert fused.operation == "DiceBCE fwd+bwd [2,2,8^3], fused=True"
    assert {r.baseline for r in results} == {"MONAI DiceCELoss, no map"}
    assert [eager.max_ratio, fused.max_ratio] == [1.0, 0.6]
    assert all(r.baseline_ms > 0 and r.voxweight_ms > 0 and r.paired_ratio is not None for r in (eager, fused))
    assert "no map = MONAI Dice + BCE" in eager.note
    assert "= eager" in fused.note or "eager fallback" in fused.note
    try:  # where the resident set's high-water mark can be reset, the memory row must be there
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        measurable = True
    except OSError:
        measurable = False
    assert len(memory) == (1 if measurable else 0)
    for r in memory:
        assert r.operation == "DiceBCE peak memory [2,2,8^3], eager"
        assert r.unit == "MiB" and r.max_ratio == 1.0 and r.baseline_ms >= 0 and r.voxweight_ms >= 0


def test_cli_lists_the_registered_cases(capsys):
    """``voxweight bench --help`` names every case of the registry (the CLI keeps no list of its own)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert {"compound", "ds"} <= set(CASES)
    listed = text.split("run only these cases: ")[1].split(" --json")[0]
    assert listed.replace(" (GPU)", "").split(", ") == list(CASES)
    assert "roofline (GPU)" in listed
