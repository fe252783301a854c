"""The demo's figure: predictions on one 0-1 scale with the 0.5 contour, the boundary bonus linear and visible."""

from __future__ import annotations

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import LogNorm, Normalize
from scipy import ndimage

from voxweight.demo.figure import draw_figure, save_figure

BOUNDARY = {"w0": 5.0, "sigma": 3.0}
SPACING = (1.0, 1.0, 2.0)


def _scene() -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    label = np.zeros((20, 16, 8), bool)
    label[3:8, 4:9, 2:6] = True  # two boxes two voxels apart in x, on slices 2-5
    label[10:15, 4:9, 2:6] = True
    label[4:6, 12:14, 6] = True  # a small third object alone on slice 6: most foreground is elsewhere
    t = torch.as_tensor(label, dtype=torch.float32)[None, None]
    probabilities = {"shy": 0.1 + 0.3 * t,  # 0.1-0.4: below 0.5 everywhere
                     "sure": 0.05 + 0.9 * t}  # 0.05-0.95: crosses 0.5 at the objects' edges
    return label, probabilities


@pytest.fixture
def figure():
    label, probabilities = _scene()
    fig = draw_figure([torch.rand(1, *label.shape)], [label], probabilities, "case.nii.gz", SPACING, BOUNDARY)
    yield fig, label, probabilities
    plt.close(fig)


def test_predictions_share_one_0_1_scale_with_the_threshold_contour(figure):
    fig, label, probabilities = figure
    prediction_axes = fig.axes[3:5]
    for ax, (name, prob) in zip(prediction_axes, probabilities.items(), strict=True):
        image = ax.images[0]
        assert image.get_clim() == (0.0, 1.0), name  # not each model's own min-max
        assert type(image.norm) is Normalize
        assert f"max p {float(prob.max()):.2f}" in ax.get_title()
    shy, sure = prediction_axes
    assert not shy.collections  # nothing reaches 0.5: no contour (and no matplotlib warning)
    contour = sure.collections[0]
    assert list(contour.levels) == [0.5]
    # the contour's vertices lie between the voxels inside (0.95) and outside (0.05): on the objects' edges
    z = int(fig.texts[0].get_text().split("z=")[1].split()[0])
    points = np.concatenate([p.vertices for p in contour.get_paths()])
    assert len(points) > 0
    edge = ndimage.binary_dilation(label[:, :, z]) & ~ndimage.binary_erosion(label[:, :, z])
    near = np.argwhere(edge)
    assert all(np.min(np.abs(near - point).max(axis=1)) <= 0.5 + 1e-9 for point in points)


def test_boundary_bonus_is_linear_and_drawn_on_its_own_visible_range(figure):
    """Oracle: the bonus between the two boxes, from scipy distances: w0 exp(-(d1 + d2)^2 / (2 sigma^2))."""
    fig, label, _ = figure
    ax = fig.axes[2]
    image = ax.images[0]
    assert not isinstance(image.norm, LogNorm) and type(image.norm) is Normalize
    shown = np.asarray(image.get_array()).T  # [x, y] of the slice shown
    vmin, vmax = image.get_clim()
    assert vmin == 0.0 and vmax == pytest.approx(shown.max()) and vmax > 1.0  # visible: the scale is its range
    z = int(fig.texts[0].get_text().split("z=")[1].split()[0])
    assert z in range(2, 6)  # the slices between the two boxes, not slice 6 (which has foreground only)
    objects, _ = ndimage.label(label, structure=np.ones((3, 3, 3)))
    d = np.stack([ndimage.distance_transform_edt(objects != k, sampling=SPACING) for k in (1, 2, 3)])
    d.sort(axis=0)
    bonus = BOUNDARY["w0"] * np.exp(-(d[0] + d[1]) ** 2 / (2 * BOUNDARY["sigma"] ** 2)) * (objects == 0)
    assert shown == pytest.approx(bonus[:, :, z], abs=1e-3 * BOUNDARY["w0"])
    assert "linear" in ax.get_title() and "class balance" in ax.get_title()


def test_save_figure_writes_the_png(tmp_path):
    label, probabilities = _scene()
    path = save_figure(tmp_path / "demo.png", [torch.rand(1, *label.shape)], [label], probabilities, "case.nii.gz",
                       SPACING, BOUNDARY)
    picture = matplotlib.image.imread(path)
    assert picture.shape[1] > picture.shape[0] > 100 and picture.std() > 0.05
