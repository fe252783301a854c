"""voxweight stats / preview through main([...]) and one subprocess; oracles: numpy counts, scan_labels, scipy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from matplotlib.image import imread
from scipy import ndimage

from voxweight import LabelStats, scan_labels
from voxweight.cli import main
from voxweight.cli.preview import foreground_centre

ROOT = Path(__file__).resolve().parents[2]


def write(path, array, dtype=np.uint8, zooms=(1.0, 1.0, 2.0)):
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=dtype), np.diag([*zooms, 1.0])), str(path))
    return path


@pytest.fixture
def labels_dir(tmp_path, rng):
    folder = tmp_path / "labels"
    folder.mkdir()
    for i in range(3):
        write(folder / f"case{i}.nii.gz", rng.random((8, 7, 6)) < 0.1 * (i + 1))
    return folder


def table_rows(out: str) -> dict[str, list[str]]:
    lines = out.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["class", "voxels"])
    return {line.split()[0]: line.split()[1:] for line in lines[start + 1:]}


def test_stats_table_and_json_match_the_library(labels_dir, tmp_path, capsys):
    out = tmp_path / "stats.json"
    assert main(["stats", str(labels_dir), "--no-progress", "--json", str(out)]) == 0
    expected = scan_labels(labels_dir, progress=False)
    arrays = [np.asarray(nib.load(p).dataobj) for p in sorted(labels_dir.iterdir())]
    fg = sum(int(a.sum()) for a in arrays)
    rows = table_rows(capsys.readouterr().out)
    assert rows["1"][0] == f"{fg:,}"  # voxels, counted by numpy
    assert float(rows["1"][1]) == pytest.approx(fg / (3 * 8 * 7 * 6), abs=1e-6)
    assert rows["1"][2] == "3"  # images containing class 1
    assert float(rows["1"][3]) == pytest.approx((3 * 336 - fg) / fg, abs=1e-4)
    payload = json.loads(out.read_text())
    assert LabelStats.from_json(out.read_text()) == expected  # round trip; extra keys ignored
    assert payload["pos_weight"] == pytest.approx(expected.pos_weight().tolist())
    assert payload["class_weight_balanced"] == pytest.approx(expected.class_weight("balanced").tolist())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "stats.json"]  # no temp file left


def test_stats_absent_class_and_skipped_file(labels_dir, tmp_path, capsys):
    (labels_dir / "broken.nii.gz").write_bytes(b"\x1f\x8b broken")
    out = tmp_path / "s.json"
    # Issue section 3 changed this expectation: a skipped file makes the exit code 1 (the JSON is still written).
    assert main(["stats", str(labels_dir), "--num-classes", "3", "--no-progress", "--json", str(out)]) == 1
    assert "skipped 1" in capsys.readouterr().out
    assert main(["stats", str(labels_dir), "--num-classes", "3", "--no-progress", "--json", str(out),
                 "--allow-skipped"]) == 0
    captured = capsys.readouterr()
    assert table_rows(captured.out)["2"][3:] == ["absent", "absent"]
    assert "skipped" in captured.err and "broken.nii.gz" in captured.err
    payload = json.loads(out.read_text())
    assert payload["pos_weight"][2] is None and payload["skipped"][0][0].endswith("broken.nii.gz")
    assert main(["stats", str(labels_dir), "--strict", "--no-progress"]) == 1
    assert "broken.nii.gz" in capsys.readouterr().err


def test_stats_exit_codes(tmp_path, labels_dir, capsys):
    assert main(["stats", str(tmp_path / "missing.nii.gz")]) == 1
    assert "paths: expected an existing file or directory" in capsys.readouterr().err
    assert main(["stats", str(labels_dir), "--workers", "0", "--no-progress"]) == 1
    assert main(["stats", str(labels_dir), "--no-progress", "--json", str(tmp_path / "no" / "s.json")]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["stats", str(labels_dir), "--workers", "two"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["stats"])
    assert exc.value.code == 2


def test_python_dash_m_voxweight_stats(labels_dir):
    proc = subprocess.run([sys.executable, "-m", "voxweight", "stats", str(labels_dir), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    expected = scan_labels(labels_dir, progress=False)
    assert float(rows["1"][3]) == pytest.approx(float(expected.pos_weight()[1]), abs=1e-4)


def test_foreground_centre_matches_scipy(rng):
    mask = np.zeros((9, 10, 11), dtype=bool)
    mask[2:5, 3:9, 1:4] = rng.random((3, 6, 3)) < 0.7
    expected = tuple(int(np.floor(c + 0.5)) for c in ndimage.center_of_mass(mask))
    assert foreground_centre(mask) == expected


def test_preview_png_size_and_content(tmp_path, rng):
    label = np.zeros((20, 16, 12), dtype=np.uint8)
    label[5:12, 4:10, 3:8] = 1
    label[8:10, 6:8, 4:6] = 2
    label_path = write(tmp_path / "label.nii.gz", label)
    weights = (1 + 4 * ndimage.binary_dilation(label > 0) ^ (label > 0)).astype(np.float32)
    weights_path = write(tmp_path / "w.nii.gz", weights, np.float32)
    png = tmp_path / "preview.png"
    assert main(["preview", str(label_path), "--weights", str(weights_path), "--out", str(png)]) == 0
    image = imread(png)
    assert image.shape == (800, 1200, 4)  # 2 rows x 3 panels of 4 x 4 inches at 100 dpi
    assert len(np.unique(image.reshape(-1, 4), axis=0)) > 50  # not blank, not a single colour
    assert main(["preview", str(label_path), "--out", str(png)]) == 0
    assert imread(png).shape == (400, 1200, 4)
    # An empty label still previews (mid-slices); a 2D label or mismatched weights are data errors.
    assert main(["preview", str(write(tmp_path / "empty.nii.gz", np.zeros((6, 6, 6)))), "--out", str(png)]) == 0
    assert main(["preview", str(write(tmp_path / "flat.nii.gz", np.zeros((6, 6)))), "--out", str(png)]) == 1
    assert main(["preview", str(label_path), "--weights", str(write(tmp_path / "small.nii.gz", np.ones((2, 2, 2)),
                                                                    np.float32)), "--out", str(png)]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["preview", str(label_path)])  # --out is required
    assert exc.value.code == 2


def test_weights_map_matches_the_library_with_header_spacing(tmp_path):
    from voxweight.maps import boundary_weights, class_balance_weights

    label = np.zeros((14, 12, 10), dtype=np.uint8)
    label[2:6, 3:9, 2:8] = 1
    label[8:12, 3:9, 2:8] = 2  # a second object (another class): foreground = label > 0
    zooms = (0.8, 1.0, 2.5)
    label_path = write(tmp_path / "label.nii.gz", label, zooms=zooms)
    out = tmp_path / "w.nii.gz"
    fg = label > 0
    cases = {
        ("--class-balance",): class_balance_weights(fg),
        ("--boundary", "unet", "--sigma", "3", "--w0", "5"): boundary_weights(fg, sigma=3.0, w0=5.0, spacing=zooms),
        ("--class-balance", "--boundary", "distance"):
            class_balance_weights(fg) + boundary_weights(fg, mode="distance", spacing=zooms) - 1,
    }
    for options, expected in cases.items():
        assert main(["weights", str(label_path), str(out), *options]) == 0
        image = nib.load(out)
        assert image.get_data_dtype() == np.float32
        np.testing.assert_allclose(np.asarray(image.dataobj), expected, rtol=1e-6)
        np.testing.assert_array_equal(image.affine, nib.load(label_path).affine)
        assert image.header.get_zooms() == pytest.approx(zooms)
    # The header's anisotropic spacing matters: isotropic distances give another map.
    assert not np.allclose(cases[("--boundary", "unet", "--sigma", "3", "--w0", "5")],
                           boundary_weights(fg, sigma=3.0, w0=5.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label.nii.gz", "w.nii.gz"]  # no temp file left


def test_weights_exit_codes(tmp_path, capsys):
    label_path = write(tmp_path / "label.nii.gz", np.eye(4)[None].repeat(3, 0))
    out = tmp_path / "w.nii.gz"
    for options in ([], ["--class-balance", "--sigma", "2"], ["--boundary", "edges"]):
        with pytest.raises(SystemExit) as exc:
            main(["weights", str(label_path), str(out), *options])
        assert exc.value.code == 2
    assert main(["weights", str(label_path), str(out), "--boundary", "unet", "--sigma", "-1"]) == 1
    assert "sigma: expected a finite number > 0" in capsys.readouterr().err
    bad = write(tmp_path / "float.nii.gz", np.full((3, 3, 3), 0.5), np.float32)
    assert main(["weights", str(bad), str(out), "--class-balance"]) == 1
    assert "whole-number" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("affine", [np.diag([0.0, 1.0, 1.0, 1.0]), np.zeros((4, 4))])
def test_preview_of_a_label_nibabel_cannot_orient_names_the_file(tmp_path, capsys, affine):
    path = tmp_path / "label.nii.gz"
    image = nib.Nifti1Image(np.ones((4, 4, 4), dtype=np.uint8), None)
    image.header.set_qform(None, code=0)
    image.header.set_sform(affine, code=2)  # what a corrupted header gives: an axis that points nowhere
    nib.save(image, path)
    assert np.isnan(nib.io_orientation(nib.load(path).affine)).any()
    assert main(["preview", str(path), "--out", str(tmp_path / "p.png")]) == 1
    err = capsys.readouterr().err
    assert f"error: {path}: " in err and "Traceback" not in err
    assert not (tmp_path / "p.png").exists()
