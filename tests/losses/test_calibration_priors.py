"""debias_logits with train/deploy priors: hand-computed shifts, LabelStats priors, bad input, and calibration.

Oracles: the formulas ``x - log r - logit(pi_train) + logit(pi_deploy)`` (sigmoid) and
``x - log w_c + log(pi_deploy_c / pi_train_c)`` (softmax) written out with ``math``; today's call (no
priors) for equal priors; and, numerically, well-specified logistic models trained on pos/neg crops and
scored on full held-out volumes against the true prevalence and the expected calibration error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from voxweight import LabelStats, debias_logits, voxel_weighted_bce, voxel_weighted_ce
from voxweight.demo_metrics import expected_calibration_error


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_sigmoid_shift_by_hand_per_channel():
    logits = torch.zeros(2, 2, 3)
    out = debias_logits(logits, [1.0, math.e], train_prior=[0.5, 0.2], deploy_prior=[0.1, 0.2])
    expected = torch.tensor([-_logit(0.5) + _logit(0.1), -1.0]).reshape(1, 2, 1).expand(2, 2, 3)
    torch.testing.assert_close(out, expected)
    single = debias_logits(torch.zeros(2, 4), 2.0, channel_dim=0, train_prior=0.5, deploy_prior=0.02)
    torch.testing.assert_close(single, torch.full((2, 4), -math.log(2.0) + _logit(0.02)))
    with_bg = debias_logits(torch.zeros(1, 1), 4.0, bg_weight=2.0, train_prior=0.3, deploy_prior=0.6)
    torch.testing.assert_close(with_bg, torch.tensor([[-math.log(2.0) - _logit(0.3) + _logit(0.6)]]))


def test_spatial_prior_map_broadcasts_like_a_weight_map():
    deploy = torch.tensor([0.1, 0.5, 0.9]).reshape(1, 1, 3)  # an atlas: a prior per voxel
    out = debias_logits(torch.zeros(2, 1, 3), 1.0, train_prior=0.5, deploy_prior=deploy)
    torch.testing.assert_close(out[0, 0], torch.tensor([_logit(0.1), 0.0, _logit(0.9)]))


@pytest.mark.parametrize("prior", [0.3, [0.3, 0.01], torch.tensor([0.2, 0.7])])
def test_equal_priors_give_todays_call_exactly(prior):
    logits = torch.randn(2, 2, 5, 4, generator=torch.Generator().manual_seed(0))
    today = debias_logits(logits, [3.0, 0.5], bg_weight=0.25)
    assert torch.equal(debias_logits(logits, [3.0, 0.5], bg_weight=0.25, train_prior=prior, deploy_prior=prior), today)
    soft = debias_logits(logits, [3.0, 0.5], train_prior=[0.4, 0.6], deploy_prior=[0.4, 0.6], activation="softmax")
    assert torch.equal(soft, debias_logits(logits, [3.0, 0.5]))


def test_softmax_shift_by_hand_and_only_ratios_matter():
    logits = torch.tensor([[0.3, -0.2, 1.0]])
    w, train, deploy = [1.0, 2.0, 4.0], [0.6, 0.3, 0.1], [0.9, 0.05, 0.05]
    out = debias_logits(logits, w, train_prior=train, deploy_prior=deploy, activation="softmax")
    expected = torch.tensor([[x - math.log(wc) + math.log(d / t) for x, wc, t, d in
                              zip(logits[0].tolist(), w, train, deploy, strict=True)]])
    torch.testing.assert_close(out, expected)
    scaled = debias_logits(logits, w, train_prior=[p / 2 for p in train], deploy_prior=deploy, activation="softmax")
    torch.testing.assert_close(scaled.softmax(1), out.softmax(1))
    # a model that predicts the training prior predicts the deployment prior once corrected
    fitted = torch.tensor([train]).log() + torch.tensor([w]).log()
    corrected = debias_logits(fitted, w, train_prior=train, deploy_prior=deploy, activation="softmax")
    torch.testing.assert_close(corrected.softmax(1), torch.tensor([deploy]))


def _stats(counts: list[int]) -> LabelStats:
    stats = LabelStats(len(counts))
    stats.add_counts(np.array(counts))
    return stats


def test_label_stats_priors_are_voxel_prevalence():
    train, deploy = _stats([60, 30, 10]), _stats([980, 15, 5])
    logits = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
    soft = debias_logits(logits, 1.0, train_prior=train, deploy_prior=deploy, activation="softmax")
    torch.testing.assert_close(soft, debias_logits(logits, 1.0, train_prior=[0.6, 0.3, 0.1],
                                                   deploy_prior=[0.98, 0.015, 0.005], activation="softmax"))
    # sigmoid with a channel per foreground class: the background class (0) is dropped
    two = logits[:, 1:]
    out = debias_logits(two, 2.0, train_prior=train, deploy_prior=deploy)
    torch.testing.assert_close(out, debias_logits(two, 2.0, train_prior=[0.3, 0.1], deploy_prior=[0.015, 0.005]))
    # sigmoid with K == C channels: every class is a channel
    torch.testing.assert_close(debias_logits(logits, 1.0, train_prior=train, deploy_prior=deploy),
                               debias_logits(logits, 1.0, train_prior=[0.6, 0.3, 0.1],
                                             deploy_prior=[0.98, 0.015, 0.005]))
    mixed = debias_logits(two, 2.0, train_prior=train, deploy_prior=0.01)
    torch.testing.assert_close(mixed, debias_logits(two, 2.0, train_prior=[0.3, 0.1], deploy_prior=0.01))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_double_precision_keep_dtype_and_stay_finite(dtype):
    logits = torch.linspace(-3, 3, 12).reshape(2, 2, 3).to(dtype)
    out = debias_logits(logits, [40.0, 1.0], train_prior=[0.5, 1e-6], deploy_prior=[1e-4, 0.5])
    assert out.dtype == dtype and torch.isfinite(out).all()
    ref = debias_logits(logits.double(), [40.0, 1.0], train_prior=[0.5, 1e-6], deploy_prior=[1e-4, 0.5])
    torch.testing.assert_close(out.double(), ref, atol=0.1, rtol=0.01)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"train_prior": 0.5}, ValueError, "expected both or neither, got only train_prior"),
    ({"deploy_prior": 0.5}, ValueError, "got only deploy_prior"),
    ({"train_prior": 0.0, "deploy_prior": 0.5}, ValueError, r"train_prior: expected finite values in \(0, 1\)"),
    ({"train_prior": 0.5, "deploy_prior": 1.0}, ValueError, r"deploy_prior: expected finite values in \(0, 1\)"),
    ({"train_prior": -0.1, "deploy_prior": 0.5}, ValueError, "train_prior"),
    ({"train_prior": float("nan"), "deploy_prior": 0.5}, ValueError, "train_prior"),
    ({"train_prior": 0.5, "deploy_prior": float("inf")}, ValueError, "deploy_prior"),
    ({"train_prior": [0.5, 0.5, 0.5], "deploy_prior": 0.5}, ValueError, "train_prior: expected one value per channel"),
    ({"train_prior": "0.5", "deploy_prior": 0.5}, TypeError, "train_prior"),
    ({"train_prior": _stats([5, 5, 5, 5]), "deploy_prior": 0.5}, ValueError, "num_classes=2"),
    ({"train_prior": LabelStats(2), "deploy_prior": 0.5}, ValueError, "no data"),
    ({"train_prior": _stats([5, 0]), "deploy_prior": 0.5}, ValueError, r"train_prior: expected finite values in \(0"),
    ({"activation": "softmaxx"}, ValueError, "softmax"),
    ({"train_prior": 0.5, "deploy_prior": [0.5, 0.5], "activation": "softmax"}, ValueError, "one prior per class"),
    ({"train_prior": _stats([5, 5, 5]), "deploy_prior": [0.5, 0.5], "activation": "softmax"}, ValueError,
     "num_classes=2, the channels"),
])
def test_bad_priors(kwargs, error, match):
    with pytest.raises(error, match=match):
        debias_logits(torch.zeros(2, 2, 3), 1.0, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_logits_with_label_stats_and_a_cpu_tensor_prior():
    logits = torch.zeros(1, 1, 2, device="cuda")
    out = debias_logits(logits, 1.0, train_prior=_stats([1, 1]), deploy_prior=0.2)
    assert out.device == logits.device
    torch.testing.assert_close(out.cpu(), torch.full((1, 1, 2), _logit(0.2)))
    with pytest.raises(ValueError, match="deploy_prior"):
        debias_logits(logits, 1.0, train_prior=0.5, deploy_prior=torch.tensor([0.2]))


# ---- calibration, numerically: trained on pos/neg crops, scored on full held-out volumes ----------------

SHAPE, ROI, CROPS = (24, 24, 24), 8, 160


def _volume(rng: np.random.Generator, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Balls of class 1 (and 2) of fixed radii at random places; intensity = class id + Gaussian noise (sd 0.8)."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"), axis=-1)
    label = np.zeros(SHAPE, dtype=np.int64)
    for c in range(1, classes):
        centre = np.array([5.0 + 12 * (c - 1), 6.0, 6.0]) + rng.uniform(0, [2, 12, 12])  # balls apart
        label[np.linalg.norm(grid - centre, axis=-1) < 5.0 - c / 2] = c
    return label + rng.normal(0.0, 0.8, SHAPE), label


def _pos_neg_crops(volumes, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """RandCropByPosNegLabeld's rule: centre on a random foreground voxel half the time, else on background;
    centres moved so the crop stays inside; the same number of crops from every volume."""
    xs, ys = [], []
    for image, label in volumes:
        fg, bg = np.argwhere(label > 0), np.argwhere(label == 0)
        for _ in range(CROPS // len(volumes)):
            pool = fg if rng.random() < 0.5 else bg
            centre = pool[rng.integers(len(pool))]
            start = np.clip(centre - ROI // 2, 0, np.array(SHAPE) - ROI)
            box = tuple(slice(s, s + ROI) for s in start)
            xs.append(image[box].ravel())
            ys.append(label[box].ravel())
    return np.concatenate(xs), np.concatenate(ys)


def _fit(loss, params: torch.Tensor) -> torch.Tensor:
    opt = torch.optim.LBFGS([params], lr=1, max_iter=200, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = loss(params)
        value.backward()
        return value

    opt.step(closure)
    return params.detach()


def _data(classes: int):
    rng = np.random.default_rng(classes)
    train = [_volume(rng, classes) for _ in range(4)]
    test = [_volume(rng, classes) for _ in range(4)]
    x, y = _pos_neg_crops(train, rng)
    dataset, crops = LabelStats(classes), LabelStats(classes)
    for _, label in train:
        dataset.update_labels(label)
    crops.update_labels(y)  # the empirical prevalence the loss saw
    x_test = np.concatenate([image.ravel() for image, _ in test])
    y_test = np.concatenate([label.ravel() for _, label in test])
    return torch.from_numpy(x), torch.from_numpy(y), dataset, crops, torch.from_numpy(x_test), y_test


def test_sampler_aware_debiasing_calibrates_a_model_trained_on_pos_neg_crops():
    """Crops see 22% foreground, volumes 2.7%. Measured on the held-out volumes: mean probability 0.0274 (true
    0.0276) with the sampler-aware correction against 0.1755 with the dataset-only one (pos_weight alone);
    ECE 0.0013 against 0.1479 (over 10 other data seeds: relative error of the mean <= 5%, ECE <= 0.0018)."""
    x, y, dataset, crops, x_test, y_test = _data(classes=2)
    pos_weight = dataset.pos_weight()[1].item()  # the README's recipe: negatives / positives of the dataset
    target = y.double().reshape(1, 1, -1)

    def loss(p):
        return voxel_weighted_bce((p[0] * x + p[1]).reshape(1, 1, -1), target, pos_weight=pos_weight)

    a, b = _fit(loss, torch.zeros(2, dtype=torch.float64, requires_grad=True))
    logits = (a * x_test + b).reshape(1, 1, -1)
    only_weights = torch.sigmoid(debias_logits(logits, pos_weight)).numpy().ravel()
    aware = torch.sigmoid(debias_logits(logits, pos_weight, train_prior=crops, deploy_prior=dataset)).numpy().ravel()
    truth = y_test.mean()
    ece_aware, ece_weights = expected_calibration_error(aware, y_test), expected_calibration_error(only_weights, y_test)
    print(f"mean prob {aware.mean():.4f} (sampler-aware) / {only_weights.mean():.4f} (dataset-only), true {truth:.4f}; "
          f"ECE {ece_aware:.4f} / {ece_weights:.4f}")
    assert crops.positives[1] / crops.voxels > 4 * dataset.positives[1] / dataset.voxels  # the crops' bias is real
    assert abs(aware.mean() - truth) < 0.1 * truth
    assert abs(only_weights.mean() - truth) > 2 * truth
    assert ece_aware < 0.25 * ece_weights


def test_sampler_aware_debiasing_calibrates_a_softmax_model_trained_on_pos_neg_crops():
    """Three classes, balanced class weights, multinomial logistic model. Measured (classes 1, 2): mean
    probability 0.0279 / 0.0194 (true 0.0277 / 0.0194) sampler-aware against 0.110 / 0.037 dataset-only
    (class weights alone); mean one-vs-rest ECE 0.0007 against 0.0498."""
    x, y, dataset, crops, x_test, y_test = _data(classes=3)
    w = dataset.class_weight("balanced").double()

    def loss(p):
        logits = (p[:, 0:1] * x + p[:, 1:2]).unsqueeze(0)  # [1, 3, V]
        return voxel_weighted_ce(logits, y.reshape(1, -1), class_weight=w)

    p = _fit(loss, torch.zeros(3, 2, dtype=torch.float64, requires_grad=True))
    logits = (p[:, 0:1] * x_test + p[:, 1:2]).unsqueeze(0)
    only_weights = debias_logits(logits, w, activation="softmax").softmax(1)[0].numpy()
    aware = debias_logits(logits, w, train_prior=crops, deploy_prior=dataset, activation="softmax")
    aware = aware.softmax(1)[0].numpy()
    truth = np.array([(y_test == c).mean() for c in (1, 2)])
    ece = {name: np.mean([expected_calibration_error(q[c], y_test == c) for c in (1, 2)])
           for name, q in (("aware", aware), ("weights", only_weights))}
    print(f"mean prob {aware[1:].mean(1)} (sampler-aware) / {only_weights[1:].mean(1)} (dataset-only), "
          f"true {truth}; ECE {ece['aware']:.4f} / {ece['weights']:.4f}")
    np.testing.assert_allclose(aware[1:].mean(1), truth, rtol=0.1)
    assert np.all(np.abs(only_weights[1:].mean(1) - truth) > 0.5 * truth)
    assert ece["aware"] < 0.25 * ece["weights"]
