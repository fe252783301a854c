"""A tiny study end to end (2 recipes, 2 seeds, a few steps, 24^3 volumes) and the study command."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from voxweight.cli import main
from voxweight.study.data import find_cases, write_synthetic_study
from voxweight.study.metrics import METRICS
from voxweight.study.result import StudyResult
from voxweight.study.run import run_study

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY = {"seeds": 2, "steps": 3, "roi_size": (16, 16, 8), "batch_size": 2}


@pytest.fixture(scope="module")
def touching(tmp_path_factory):
    return write_synthetic_study(tmp_path_factory.mktemp("touching"), "touching", 4, shape=(24, 24, 24), seed=0)


@pytest.fixture(scope="module")
def tiny(touching, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return run_study(touching, ["dice_bce"], out_dir=out, **TINY), out


def test_tiny_study_reports_every_metric_for_each_seed(tiny):
    """The table has every metric of instance data; bce is added as the baseline; the seeds differ."""
    result, _ = tiny
    assert result.recipes == ["bce", "dice_bce"] and result.seeds == [0, 1]
    expected = [m for m, info in METRICS.items() if info.kind in ("all", "instances")]
    assert result.metrics() == expected
    for recipe in result.recipes:
        for metric in expected:
            values = result.scores[recipe][metric]
            assert len(values) == 2
            assert all(v is None or np.isfinite(v) for v in values)
    dice = result.scores["bce"]["ap"]
    assert dice[0] != dice[1]  # another split, initialisation and batches
    table = result.format_table()
    for metric in expected:
        assert METRICS[metric].label in table


def test_tiny_study_json_round_trips(tiny, tmp_path):
    """save_json then load_json gives the same result; the JSON has no NaN."""
    result, _ = tiny
    path = result.save_json(tmp_path / "study.json")
    again = StudyResult.load_json(path)
    assert again.to_dict() == result.to_dict()
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_tiny_study_keeps_predictions_with_the_images_affines(tiny, touching):
    """--out: one NIfTI per held-out case, recipe and seed, with the image's affine and shape; the figure."""
    result, out = tiny
    cases = {c["name"]: c for c in find_cases(touching)}
    written = sorted((out / "predictions").rglob("*.nii.gz"))
    assert written and {p.parts[-3] for p in written} == set(result.recipes)
    for path in written:
        pred, image = nib.load(path), nib.load(cases[path.name[:-7]]["image"])
        np.testing.assert_allclose(pred.affine, image.affine)
        assert pred.shape == image.shape[:3] and set(np.unique(np.asanyarray(pred.dataobj))) <= {0, 1}
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_result(touching):
    """Determinism on the CPU: the same seed gives the same scores."""
    a = run_study(touching, ["bce"], seeds=[1], steps=2, roi_size=(16, 16, 8))
    b = run_study(touching, ["bce"], seeds=[1], steps=2, roi_size=(16, 16, 8))
    assert a.scores == b.scores


def test_comparison_is_a_paired_t_interval():
    """Oracle: scipy's t quantile by hand; a constant improvement beats the baseline, noise does not."""
    from scipy import stats

    r = StudyResult(["bce", "x"], [0, 1, 2], {"bce": {"dice": [0.5, 0.6, 0.7], "hd95": [3.0, 2.0, 4.0]},
                                             "x": {"dice": [0.6, 0.72, 0.79], "hd95": [2.0, 3.0, 4.5]}})
    d = np.array([0.1, 0.12, 0.09])
    c = r.comparison("x", "dice")
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert c.mean == pytest.approx(d.mean()) and c.low == pytest.approx(d.mean() - half) and c.verdict == "better"
    assert r.comparison("x", "hd95").verdict == "within noise"
    worse = StudyResult(["bce", "x"], [0, 1], {"bce": {"hd95": [1.0, 1.0]}, "x": {"hd95": [2.0, 2.1]}})
    assert worse.comparison("x", "hd95").verdict == "worse"  # a larger distance is worse


def test_recipe_typo_gets_did_you_mean(touching):
    with pytest.raises(ValueError, match="did you mean"):
        run_study(touching, ["dice_bec"], seeds=1, steps=1)


def test_folder_without_labels_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "imagesTr").mkdir()
    assert main(["study", str(tmp_path), "--seeds", "1", "--steps", "1", "--no-progress"]) == 1
    assert "labelsTr" in capsys.readouterr().err


def test_recipes_help_lists_every_recipe(capsys):
    from voxweight.study.recipes import RECIPES

    assert main(["study", "--recipes", "help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in RECIPES)


def test_interrupted_study_leaves_no_json(touching, tmp_path, monkeypatch):
    """An interrupt during training (Ctrl-C) propagates and writes no JSON, partial or whole."""
    import voxweight.study.run as run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "train_recipe", interrupted)
    target = tmp_path / "study.json"
    with pytest.raises(KeyboardInterrupt):
        main(["study", str(touching), "--seeds", "1", "--steps", "1", "--json", str(target), "--out",
              str(tmp_path / "out"), "--no-progress"])
    assert not target.exists() and not list(tmp_path.glob(".study.json*"))


def test_study_command_writes_the_json(touching, tmp_path, capsys):
    target = tmp_path / "r.json"
    assert main(["study", str(touching), "--recipes", "bce", "--seeds", "1", "--steps", "2", "--roi-size", "16", "16",
                 "8", "--json", str(target), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "one seed is noisy" in out and StudyResult.load_json(target).seeds == [0]


def test_synthetic_vessels_report_the_tubular_metrics(tmp_path, capsys):
    """--synthetic vessels: the tubular recipes' metrics (Betti-0 error, clDice) are in the table and the JSON."""
    target = tmp_path / "v.json"
    assert main(["study", "--synthetic", "vessels", "--recipes", "dice_ce_skeleton_recall", "--seeds", "1", "--steps",
                 "2", "--roi-size", "16", "16", "8", "--out", str(tmp_path / "o"), "--json", str(target),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert METRICS["betti0_error"].label in out and METRICS["cldice"].label in out
    result = StudyResult.load_json(target)
    assert result.recipes == ["bce", "dice_ce_skeleton_recall"]
    assert "object_f1" not in result.metrics()  # no instance maps for vessels
    assert all(isinstance(v, float) for v in result.scores["bce"]["cldice"])


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"seeds": 0}, ValueError, "seeds: expected"),
    ({"seeds": [1, 1]}, ValueError, "seeds: expected distinct"),
    ({"steps": 0}, ValueError, "steps: expected"),
    ({"batch_size": 0}, ValueError, "batch_size: expected"),
    ({"roi_size": (3, 3, 3)}, ValueError, "roi_size: expected 3 ints >= 4"),
    ({"tolerance_mm": -1.0}, ValueError, "tolerance_mm: expected"),
    ({"test_fraction": 1.5}, ValueError, "test_fraction: expected"),
    ({"device": "tpu"}, ValueError, "device: expected"),
    ({"tubular": "yes"}, TypeError, "tubular: expected True or False"),
])
def test_bad_options_are_named_before_any_training(touching, monkeypatch, kwargs, error, match):
    import voxweight.study.run as run

    monkeypatch.setattr(run, "train_recipe", lambda *a, **k: pytest.fail("trained despite a bad option"))
    with pytest.raises(error, match=match):
        run_study(touching, ["bce"], **kwargs)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_study_on_cuda_matches_the_cpu_layout(touching):
    """On a GPU the same tiny study runs and reports the same metrics (values differ: other kernels)."""
    gpu = run_study(touching, ["dice_bce_unet_map"], seeds=1, steps=2, roi_size=(16, 16, 8), device="cuda")
    cpu = run_study(touching, ["dice_bce_unet_map"], seeds=1, steps=2, roi_size=(16, 16, 8))
    assert gpu.metrics() == cpu.metrics() and gpu.metadata["device"].startswith("cuda")
    assert all(v is None or np.isfinite(v) for per in gpu.scores.values() for vs in per.values() for v in vs)
