"""boundary_weights never does nothing without a word: "unet" with fewer than two objects warns, once per call.

Oracles: scipy's ``ndimage.label`` with full connectivity (the object count the warning must name), the
U-Net map computed from ``instances`` (hand-split objects), and the absence of any warning
(``warnings.simplefilter("error")``) for two or more objects, ``w0 = 0`` and ``mode="distance"``.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from voxweight.maps import boundary_weights

FULL = np.ones((3, 3, 3), dtype=bool)


def _count(fg: np.ndarray) -> int:
    return ndi.label(fg, structure=FULL)[1]


def _touching_cubes() -> tuple[np.ndarray, np.ndarray]:
    """Two 3x3x3 cubes sharing a face: one connected component, two instances."""
    lab = np.zeros((10, 10, 10), dtype=np.uint8)
    inst = np.zeros(lab.shape, dtype=np.int64)
    lab[2:5, 2:5, 2:8] = 1
    inst[2:5, 2:5, 2:5], inst[2:5, 2:5, 5:8] = 1, 2
    return lab, inst


def _unet_warnings(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("kind", ["ndarray", "tensor"])
def test_single_object_warns_once_with_count_and_fixes(kind):
    lab = np.zeros((9, 9, 9), dtype=np.uint8)
    lab[2:6, 3:7, 4] = 1
    assert _count(lab) == 1  # oracle
    label = lab if kind == "ndarray" else torch.from_numpy(lab)
    with pytest.warns(UserWarning, match=r"mode='unet' found 1 object;") as record:
        out = boundary_weights(label, sigma=1.5)
    assert len([w for w in record if issubclass(w.category, UserWarning)]) == 1
    message = str(record[0].message)
    assert "instances=" in message and "mode='distance'" in message
    np.testing.assert_array_equal(np.asarray(out), np.ones(lab.shape, dtype=np.float32))


def test_touching_objects_are_one_component_warned_and_instances_fix_it():
    """Oracle ndi.label: the touching cubes are one object; with instances the map has a bonus and no warning."""
    lab, inst = _touching_cubes()
    assert _count(lab) == 1
    with pytest.warns(UserWarning, match=r"found 1 object;"):
        plain = boundary_weights(lab, w0=5.0, sigma=2.0)
    np.testing.assert_array_equal(plain, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = boundary_weights(lab, w0=5.0, sigma=2.0, instances=inst)
        band = boundary_weights(lab, mode="distance", w0=5.0, sigma=2.0)
    assert split.max() > 1.5 and band.max() > 1.5


def test_empty_label_warns_with_zero_objects():
    with pytest.warns(UserWarning, match=r"found 0 objects;"):
        boundary_weights(np.zeros((4, 4, 4)))


def test_two_objects_do_not_warn():
    lab = np.zeros((8, 8, 8), dtype=np.uint8)
    lab[1:3, 1:3, 1:3] = lab[5:7, 5:7, 5:7] = 1
    assert _count(lab) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = boundary_weights(lab, sigma=2.0)
    assert out.max() > 1


def test_one_warning_per_call_naming_the_volumes_with_few_objects():
    """Four volumes with 2, 1, 0 and 3 objects (ndi.label): one warning, naming 2 of 4 volumes and the counts."""
    lab = np.zeros((4, 9, 9, 9), dtype=np.uint8)
    lab[0, 1:3, 1:3, 1:3] = lab[0, 6:8, 6:8, 6:8] = 1
    lab[1, 2:5, 2:5, 2:5] = 1
    lab[3, 1, 1, 1] = lab[3, 4, 4, 4] = lab[3, 7, 7, 7] = 1
    assert [_count(v) for v in lab] == [2, 1, 0, 3]
    messages = _unet_warnings(lambda: boundary_weights(lab, sigma=1.0))
    assert len(messages) == 1
    assert re.search(r"fewer than two objects in 2 of 4 volumes \(object counts: 1, 0\)", messages[0])


@pytest.mark.parametrize("kwargs", [{"w0": 0.0}, {"mode": "distance"}])
def test_no_warning_when_nothing_was_asked_or_mode_is_distance(kwargs):
    lab = np.zeros((6, 6, 6), dtype=np.uint8)
    lab[2:4, 2:4, 2:4] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boundary_weights(lab, **kwargs)


def test_instances_with_one_id_warn_and_say_so():
    lab, inst = _touching_cubes()
    with pytest.warns(UserWarning, match=r"found 1 object; .*check that instances holds one id per object"):
        boundary_weights(lab, instances=(inst > 0).astype(np.int64))


def test_multiclass_counts_each_class_component():
    """Classes 1 and 2 touching are two objects (no warning); a single class blob is one (warning)."""
    lab = np.zeros((8, 8, 8), dtype=np.int64)
    lab[2:5, 2:5, 2:4], lab[2:5, 2:5, 4:6] = 1, 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boundary_weights(lab, multiclass=True, sigma=2.0)
    with pytest.warns(UserWarning, match=r"found 1 object;"):
        boundary_weights(np.where(lab > 0, 1, 0), multiclass=True, sigma=2.0)


@pytest.mark.parametrize(("sigma", "warns"), [(0.1, True), (0.18, True), (0.2, False), (1.0, False)])
def test_sigma_far_below_spacing_warns(sigma, warns):
    """The bonus one voxel away is w0 exp(-1 / (2 sigma^2)): below 1e-6 w0 for sigma < 1 / 5.3 (hand-computed)."""
    lab = np.zeros((8, 8, 8), dtype=np.uint8)
    lab[2:4, 2:4, 2:4] = 1
    messages = _unet_warnings(lambda: boundary_weights(lab, mode="distance", sigma=sigma))
    assert len(messages) == int(warns)
    if warns:
        assert messages[0].startswith("sigma: the bonus one voxel away is below 1e-6 w0")
