"""fused=True (torch.compile) against the eager path, which is torch's own kernel (the oracle)."""

from __future__ import annotations

import pytest
import torch

import voxweight
import voxweight.losses.fused as bce
from voxweight import VoxelWeightedBCE, voxel_weighted_bce


def _case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 6, 6, 6, generator=g)
    t = (torch.rand(2, 2, 6, 6, 6, generator=g) > 0.8).float()
    w = torch.rand(2, 1, 6, 6, 6, generator=g)
    mask = torch.rand(2, 1, 6, 6, 6, generator=g) > 0.3
    return x, t, w, mask


def _value_and_grad(fused, **kwargs):
    x, t, w, _ = _case()
    x.requires_grad_()
    loss = voxel_weighted_bce(x, t, w, pos_weight=[3.0, 0.5], fused=fused, **kwargs)
    loss.backward()
    return loss.detach(), x.grad


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [dict(reduction="mean"), dict(reduction="weighted_mean", mask=_case()[3])],
                         ids=["mean", "weighted_mean-mask"])
def test_fused_matches_eager(kwargs):
    if bce._compile_failed:
        pytest.skip("torch.compile is unavailable here; the fallback is tested below")
    ref, ref_grad = _value_and_grad(False, **kwargs)
    out, grad = _value_and_grad(True, **kwargs)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-8)
    assert not bce._compile_failed


@pytest.mark.slow
def test_fused_balance_matches_eager():
    if bce._compile_failed:
        pytest.skip("torch.compile is unavailable here")
    x, t, _, _ = _case()
    ref = voxel_weighted_bce(x, t, balance="balanced")
    torch.testing.assert_close(voxel_weighted_bce(x, t, balance="balanced", fused=True), ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("needs_grad", [False, True], ids=["no-grad", "grad"])
def test_fused_falls_back_to_eager_with_one_warning(monkeypatch, needs_grad):
    def broken_compile(fn):
        raise RuntimeError("no C++ compiler")

    for name, value in (("_compiled", None), ("_compiled_grad", None), ("_compile_failed", False),
                        ("_grad_failed", False)):
        monkeypatch.setattr(bce, name, value)
    monkeypatch.setattr(torch, "compile", broken_compile)
    x, t, w, _ = _case()
    x.requires_grad_(needs_grad)
    with pytest.warns(RuntimeWarning, match="fused=True could not compile") as warned:
        out = VoxelWeightedBCE(fused=True)(x, t, w)
    assert len(warned) == 1
    assert torch.equal(out, voxel_weighted_bce(x, t, w))
    assert bce._compile_failed


def _grads(fused, scale=1.0, backwards=1, target_grad=False):
    """Input (and target) gradients of ``scale * loss``, after ``backwards`` backward passes."""
    x, t, w, _ = _case()
    x.requires_grad_()
    t = (0.1 + 0.8 * t).requires_grad_(target_grad)  # soft targets, as in distillation
    raw = voxel_weighted_bce(x, t, w, pos_weight=[3.0, 0.5], fused=fused, reduction="weighted_mean")
    stored_gradient = "LossWithGradient" in type(raw.grad_fn).__name__
    assert stored_gradient == (fused and not target_grad)  # the path under test is the one taken
    loss = scale * raw
    for i in range(backwards):
        loss.backward(retain_graph=i < backwards - 1)
    return loss.detach(), x.grad, t.grad


@pytest.mark.slow
@pytest.mark.parametrize(("scale", "backwards", "target_grad"), [(1.0, 1, False), (-2.5, 1, False), (1.0, 2, False),
                                                                  (0.5, 1, True)],
                         ids=["plain", "scaled", "retain_graph", "target-grad"])
def test_fused_gradient_kernel_matches_autograd(scale, backwards, target_grad):
    """Oracle: the eager path's autograd. A scaled loss scales the stored gradient, a second backward
    (retain_graph) recomputes it, and a target that needs a gradient gets one (the compiled-loss path)."""
    if bce._compile_failed:
        pytest.skip("torch.compile is unavailable here")
    loss, x_grad, t_grad = _grads(True, scale, backwards, target_grad)
    ref_loss, ref_x_grad, ref_t_grad = _grads(False, scale, backwards, target_grad)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(x_grad, ref_x_grad, rtol=1e-5, atol=1e-9)
    if target_grad:
        torch.testing.assert_close(t_grad, ref_t_grad, rtol=1e-5, atol=1e-9)
    else:
        assert t_grad is None
    assert not bce._grad_failed and not bce._compile_failed


def test_an_input_the_eager_path_rejects_keeps_compiling_on():
    """torch cannot differentiate its BCE with respect to ``weight``: fused=True raises torch's own error
    (as the eager path does) instead of warning and switching compilation off for the session."""
    x, t, w, _ = _case()
    w.requires_grad_()
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        voxel_weighted_bce(x.requires_grad_(), t, w)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        voxel_weighted_bce(x, t, w, fused=True)
    assert not bce._compile_failed


def _second_order(fused):
    x, t, w, _ = _case()
    x.requires_grad_()
    (grad,) = torch.autograd.grad(voxel_weighted_bce(x, t, w, fused=fused), x, create_graph=True)
    (grad**2).sum().backward()
    return grad.detach(), x.grad


@pytest.mark.slow
def test_fused_gradient_kernel_double_backward_matches_autograd():
    """Oracle: eager second-order gradients; create_graph=True gets a differentiable gradient."""
    if bce._compile_failed:
        pytest.skip("torch.compile is unavailable here")
    grad, second = _second_order(True)
    ref_grad, ref_second = _second_order(False)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(second, ref_second, rtol=1e-5, atol=1e-12)
    assert second.abs().max() > 0


BAD_VALUES = [  # (override of the case, the eager path's message)
    (dict(target=torch.full((2, 2, 6, 6, 6), 2.0)), r"target: expected values in \[0, 1\], got values in \[2, 2\]"),
    (dict(weight=-torch.ones(2, 1, 6, 6, 6)), r"weight: expected finite non-negative values, got values in \[-1, -1\]"),
    (dict(weight=torch.full((2, 1, 6, 6, 6), float("inf"))), r"weight: expected finite non-negative"),
    (dict(sample_weight=[1.0, -0.5]), r"sample_weight: expected finite non-negative"),
    (dict(input=torch.full((2, 2, 6, 6, 6), 1.5), logits=False), r"input: expected probabilities in \[0, 1\]"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("override", "message"), BAD_VALUES, ids=["target", "weight<0", "weight-inf", "sample",
                                                                  "probabilities"])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "fallback"])
def test_fused_value_checks_run_in_the_kernel_with_the_eager_messages(override, message, compiled, monkeypatch):
    """Oracle: the eager path's ValueError, word for word; the checks are deferred into the fused call."""
    if compiled and bce._compile_failed:
        pytest.skip("torch.compile is unavailable here")
    if not compiled:
        monkeypatch.setattr(bce, "_compile_failed", True)
    x, t, w, _ = _case()
    args = dict(input=x, target=t, weight=w)
    args.update(override)
    deferred = []
    original = bce.judge_range_checks
    monkeypatch.setattr(bce, "judge_range_checks", lambda checks, ext: deferred.append(len(checks)) or original(
        checks, ext))
    with pytest.raises(ValueError, match=message):
        voxel_weighted_bce(args.pop("input"), args.pop("target"), args.pop("weight"), **args)
    with pytest.raises(ValueError, match=message):
        voxel_weighted_bce(**dict(dict(input=x, target=t, weight=w), **override), fused=True)
    assert deferred and deferred[-1] >= 2  # target and weight at least, judged after the fused call
    if "logits" not in override:  # torch's own binary_cross_entropy rejects probabilities > 1 eagerly
        with voxweight.value_checks("off"):  # off: nothing is checked, eagerly or fused
            voxel_weighted_bce(**dict(dict(input=x, target=t, weight=w), **override), fused=True)
