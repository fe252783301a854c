"""``weights`` exposes the library's options and ``preview`` shows RAS slices over an image.

Oracles: the library's own maps (``class_balance_weights``, ``multiclass_balance_weights``,
``boundary_weights``) and hand-computed weights; ``scipy.ndimage.label`` with a 3x3x3 structure for the
object count; ``nibabel.as_closest_canonical`` for the RAS orientation (a preview of a file equals the
preview of its canonical copy, pixel for pixel).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from matplotlib.image import imread
from scipy import ndimage

from voxweight.cli import main
from voxweight.cli.preview import to_ras
from voxweight.maps import boundary_weights, class_balance_weights, multiclass_balance_weights

ZOOMS = (0.8, 1.0, 2.5)


def write(path, array, dtype=np.uint8, affine=None):
    affine = np.diag([*ZOOMS, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=dtype), affine), str(path))
    return path


@pytest.fixture
def touching(tmp_path):
    """Two boxes touching face to face (one 26-connected component), two classes, and their instance map."""
    label = np.zeros((16, 12, 10), dtype=np.uint8)
    label[3:8, 3:9, 2:8] = 1
    label[8:13, 3:9, 2:8] = 2
    instances = np.where(label > 0, label.astype(np.int32) * 10, 0)
    return label, write(tmp_path / "label.nii.gz", label), write(tmp_path / "inst.nii.gz", instances, np.int32)


def run_weights(tmp_path, label_path, *options):
    out = tmp_path / "w.nii.gz"
    assert main(["weights", str(label_path), str(out), *options]) == 0
    return np.asarray(nib.load(out).dataobj)


def test_fixed_fg_bg_weights_and_max_weight(tmp_path, touching):
    label, path, _ = touching
    fg = label > 0
    got = run_weights(tmp_path, path, "--class-balance", "--fg-weight", "7", "--bg-weight", "0.5")
    np.testing.assert_array_equal(got, np.where(fg, 7.0, 0.5).astype(np.float32))  # by hand
    got = run_weights(tmp_path, path, "--class-balance", "--fg-weight", "7", "--max-weight", "3")
    np.testing.assert_array_equal(got, np.where(fg, 3.0, 1.0).astype(np.float32))
    for mode in ("inverse_frequency", "sqrt_inverse"):
        got = run_weights(tmp_path, path, "--class-balance", "--balance-mode", mode, "--max-weight", "4")
        np.testing.assert_allclose(got, class_balance_weights(fg, mode=mode, max_weight=4.0), rtol=1e-6)
    f = fg.mean()
    np.testing.assert_allclose(run_weights(tmp_path, path, "--class-balance", "--balance-mode", "inverse_frequency"),
                               np.where(fg, 1 / f, 1 / (1 - f)), rtol=1e-5)


def test_multiclass_balance_and_boundaries(tmp_path, touching):
    label, path, _ = touching
    got = run_weights(tmp_path, path, "--class-balance", "--multiclass")
    np.testing.assert_allclose(got, multiclass_balance_weights(label.astype(np.int64)), rtol=1e-6)
    assert got.mean(dtype=np.float64) == pytest.approx(1.0, abs=1e-5)  # "balanced": mean weight 1
    got = run_weights(tmp_path, path, "--boundary", "distance", "--multiclass", "--sigma", "2")
    expected = boundary_weights(label.astype(np.int64), mode="distance", multiclass=True, sigma=2.0, spacing=ZOOMS)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[7, 5, 5] > 5  # the class-1 / class-2 interface is a boundary now


def test_instances_separate_touching_objects_and_the_object_count_is_printed(tmp_path, touching, capsys):
    label, path, instances_path = touching
    structure = np.ones((3, 3, 3), dtype=bool)
    _, components = ndimage.label(label > 0, structure=structure)
    assert components == 1
    plain = run_weights(tmp_path, path, "--boundary", "unet", "--sigma", "2")
    assert f"objects: {components} " in capsys.readouterr().out
    np.testing.assert_array_equal(plain, np.ones_like(plain))  # one object: nothing to separate
    split = run_weights(tmp_path, path, "--boundary", "unet", "--sigma", "2", "--instances", str(instances_path))
    assert "objects: 2 (instance ids)" in capsys.readouterr().out
    expected = boundary_weights(label > 0, sigma=2.0, spacing=ZOOMS, instances=np.asarray(
        nib.load(instances_path).dataobj))
    np.testing.assert_allclose(split, expected, rtol=1e-6)
    multi = run_weights(tmp_path, path, "--boundary", "unet", "--sigma", "2", "--multiclass")
    assert "objects: 2 (26-connected components of each class)" in capsys.readouterr().out
    np.testing.assert_allclose(multi, split, rtol=1e-6)  # the classes are the instances here


def test_spacing_overrides_the_header(tmp_path, touching):
    label, path, _ = touching
    got = run_weights(tmp_path, path, "--boundary", "distance", "--spacing", "2")
    np.testing.assert_allclose(got, boundary_weights(label > 0, mode="distance", spacing=2.0), rtol=1e-6)
    got = run_weights(tmp_path, path, "--boundary", "distance", "--spacing", "1", "2", "3")
    np.testing.assert_allclose(got, boundary_weights(label > 0, mode="distance", spacing=(1, 2, 3)), rtol=1e-6)


@pytest.mark.parametrize("options", [["--fg-weight", "2"], ["--boundary", "distance", "--instances", "{inst}"],
                                     ["--class-balance", "--multiclass", "--fg-weight", "2"],
                                     ["--class-balance", "--spacing", "1", "2"],
                                     ["--class-balance", "--spacing", "0"],
                                     ["--class-balance", "--balance-mode", "median"],
                                     ["--class-balance", "--instances", "{inst}"]])
def test_weights_usage_errors(tmp_path, touching, options):
    _, path, instances_path = touching
    with pytest.raises(SystemExit) as exc:
        main(["weights", str(path), str(tmp_path / "w.nii.gz"), *[o.format(inst=instances_path) for o in options]])
    assert exc.value.code == 2
    assert not (tmp_path / "w.nii.gz").exists()


def test_instances_of_another_shape_is_a_data_error(tmp_path, touching, capsys):
    _, path, _ = touching
    other = write(tmp_path / "other.nii.gz", np.ones((3, 3, 3)), np.int32)
    assert main(["weights", str(path), str(tmp_path / "w.nii.gz"), "--boundary", "unet", "--instances",
                 str(other)]) == 1
    assert f"error: {other}: --instances: expected the label's shape" in capsys.readouterr().err


AFFINES = {
    "LPS": np.diag([-1.0, -1.0, 2.0, 1.0]),
    "axes permuted": np.array([[0, 0, 2.0, 0], [1.0, 0, 0, 0], [0, -1.5, 0, 0], [0, 0, 0, 1]]),
    "RAS": np.diag([1.0, 1.0, 2.0, 1.0]),
}


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_to_ras_matches_nibabel_as_closest_canonical(rng, name):
    volume = rng.random((5, 6, 7)).astype(np.float32)
    image = nib.Nifti1Image(volume, AFFINES[name])
    canonical = nib.as_closest_canonical(image)
    got, spacing = to_ras(volume, image.affine, image.header.get_zooms())
    np.testing.assert_array_equal(got, np.asarray(canonical.dataobj))
    assert spacing == pytest.approx(canonical.header.get_zooms())


@pytest.mark.parametrize("name", ["LPS", "axes permuted"])
def test_preview_shows_the_same_ras_slices_whatever_the_storage_order(tmp_path, rng, name):
    label = np.zeros((12, 10, 8), dtype=np.uint8)
    label[2:6, 3:8, 1:4] = 1
    label[7:10, 2:5, 4:7] = 2
    image = rng.random(label.shape).astype(np.float32)
    weights = (1 + 3 * label).astype(np.float32)
    stored = {k: nib.Nifti1Image(v, AFFINES[name]) for k, v in (("l", label), ("i", image), ("w", weights))}
    pngs = []
    for variant in ("stored", "canonical"):
        paths = []
        for key, img in stored.items():
            img = img if variant == "stored" else nib.as_closest_canonical(img)
            paths.append(tmp_path / f"{variant}_{key}.nii.gz")
            nib.save(img, str(paths[-1]))
        pngs.append(tmp_path / f"{variant}.png")
        assert main(["preview", str(paths[0]), "--image", str(paths[1]), "--weights", str(paths[2]),
                     "--out", str(pngs[-1])]) == 0
    np.testing.assert_array_equal(imread(pngs[0]), imread(pngs[1]))


def test_preview_over_an_image_and_its_checks(tmp_path, rng, capsys):
    label = np.zeros((12, 10, 8), dtype=np.uint8)
    label[2:6, 3:8, 1:4] = 1
    label_path = write(tmp_path / "l.nii.gz", label)
    image_path = write(tmp_path / "img.nii.gz", rng.random(label.shape) * 100, np.float32)
    plain, over = tmp_path / "plain.png", tmp_path / "over.png"
    assert main(["preview", str(label_path), "--out", str(plain)]) == 0
    assert main(["preview", str(label_path), "--image", str(image_path), "--out", str(over)]) == 0
    assert imread(plain).shape == imread(over).shape == (400, 1200, 4)
    assert not np.array_equal(imread(plain), imread(over))  # the image shows through
    small = write(tmp_path / "small.nii.gz", np.ones((3, 3, 3)), np.float32)
    assert main(["preview", str(label_path), "--image", str(small), "--out", str(over)]) == 1
    assert f"error: {small}: --image: expected the label's voxel grid" in capsys.readouterr().err
