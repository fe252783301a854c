"""debias_logits: hand-computed shifts, and the numerical proof that it restores calibration."""

from __future__ import annotations

import math

import pytest
import torch

from voxweight import debias_logits, voxel_weighted_bce


def test_hand_computed_shift_on_channel_axis():
    logits = torch.zeros(2, 3, 4, 5)
    out = debias_logits(logits, [1.0, math.e, math.e**2])
    assert out.shape == logits.shape
    torch.testing.assert_close(out[:, :, 0, 0], torch.tensor([[0.0, -1.0, -2.0]] * 2))
    single = debias_logits(torch.zeros(3, 4, 4), torch.tensor([1.0, math.e, 1.0]), channel_dim=0)
    torch.testing.assert_close(single[:, 0, 0], torch.tensor([0.0, -1.0, 0.0]))
    torch.testing.assert_close(debias_logits(torch.zeros(2, 3), 4.0, bg_weight=2.0), torch.full((2, 3), -math.log(2)))


def _fit_logistic(x, y, weight=None, pos_weight=None, steps=300):
    """Well-specified logistic regression fitted to convergence with LBFGS."""
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=1, max_iter=steps, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = (params[0] * x + params[1]).reshape(-1, 1)
        loss = voxel_weighted_bce(logits, y.reshape(-1, 1), weight, pos_weight=pos_weight)
        loss.backward()
        return loss

    opt.step(closure)
    return lambda v: (params[0] * v + params[1]).detach().reshape(-1, 1)


@pytest.fixture(scope="module")
def imbalanced():
    """Data with a known model: P(y=1 | x) = sigmoid(1.5 x - 3.5), prevalence about 5%."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, dtype=torch.float64, generator=g)
    true_p = torch.sigmoid(1.5 * x - 3.5)
    y = torch.bernoulli(true_p, generator=g)
    return x, y, true_p


def test_debias_restores_prevalence_after_pos_weight_training(imbalanced):
    """Trained with pos_weight = negatives / positives, raw probabilities average ~0.5; corrected, the prevalence."""
    x, y, true_p = imbalanced
    prevalence = y.mean().item()
    p = (1 - prevalence) / prevalence
    predict = _fit_logistic(x, y, pos_weight=p)
    raw = torch.sigmoid(predict(x)).mean().item()
    corrected = torch.sigmoid(debias_logits(predict(x), p)).flatten()
    assert abs(raw - prevalence) > 0.2
    assert abs(corrected.mean().item() - prevalence) < 2e-3
    assert (corrected - true_p).abs().max().item() < 0.02


def test_debias_with_class_balance_weights(imbalanced):
    """Trained with a fg/bg voxel map w = bg + (fg - bg) t, the ratio fg / bg is what gets undone."""
    x, y, true_p = imbalanced
    fg, bg = 10.0, 0.5
    predict = _fit_logistic(x, y, weight=(bg + (fg - bg) * y).reshape(-1, 1))
    corrected = torch.sigmoid(debias_logits(predict(x), fg, bg_weight=bg)).flatten()
    assert abs(corrected.mean().item() - y.mean().item()) < 2e-3
    assert (corrected - true_p).abs().max().item() < 0.02
