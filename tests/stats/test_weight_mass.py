"""LabelStats.weight_mass as a field: merged by addition, compared, all-reduced, kept in JSON, shown in repr.

Oracles: masses computed by hand (fixed class weights: mass = counts x weight); the same pipeline run once
over all items against its halves merged; a version-1 document written out by hand, as voxweight wrote it
before the field existed; two gloo ranks whose sums are added here by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from voxweight import LabelStats
from voxweight.stats.serialise import VERSIONS

WORLD = 2
OLD_JSON = ('{"format": "voxweight.LabelStats", "version": 1, "num_classes": 2, "images": 1, "voxels": 4, '
            '"positives": [3.0, 1.0], "images_with": [1.0, 1.0], "skipped": [["b.nii", "4D"]]}')


def _stats(labels: list[list[int]], weights: tuple[float, float] | None = (1.0, 3.0)) -> LabelStats:
    """Counts of 1-D label maps; with ``weights``, the mass a fixed weight per class gives (counts x weight)."""
    stats = LabelStats(2)
    for label in labels:
        stats.update_labels(np.array(label))
    if weights is not None:
        stats.weight_mass = stats.positives * np.array(weights)
    return stats


def _weighted(item: dict) -> list[dict]:
    """Two crops per item, weight 0.5 on class 0 and 4 on class 1 (a pipeline, as from_pipeline calls it)."""
    y = item["label"]
    return [{"label": c, "label_weight": np.where(c > 0, 4.0, 0.5)} for c in (y[:, :3], y[:, 3:])]


def test_merge_adds_the_masses():
    a, b = _stats([[0, 1, 1, 0]]), _stats([[1, 1, 1, 0, 0]])
    assert a.merge(b) is a
    np.testing.assert_array_equal(a.weight_mass, [4.0 * 1.0, 5.0 * 3.0])  # 4 zeros, 5 ones over both
    np.testing.assert_array_equal(b.weight_mass, [2.0, 9.0])  # other is left as it was
    plain = _stats([[0, 1]], weights=None).merge(_stats([[1, 1]], weights=None))
    assert plain.weight_mass is None and plain.images == 2


def test_merge_with_an_empty_side_keeps_the_mass_and_copies_it():
    b = _stats([[1, 1, 0]])
    total = LabelStats(2).merge(b)
    np.testing.assert_array_equal(total.weight_mass, [1.0, 6.0])
    total.weight_mass[0] = 99.0
    assert b.weight_mass[0] == 1.0  # not shared
    kept = _stats([[0, 1]]).merge(LabelStats(2))
    np.testing.assert_array_equal(kept.weight_mass, [1.0, 3.0])


@pytest.mark.parametrize(("mine", "theirs", "message"), [
    ((1.0, 3.0), None, "other: expected a weight_mass, like self, got none"),
    (None, (1.0, 3.0), "other: expected no weight_mass, like self, got one"),
])
def test_merge_of_a_mass_with_counts_without_one_raises_and_changes_nothing(mine, theirs, message):
    a, b = _stats([[0, 1]], mine), _stats([[1, 1]], theirs)
    before = repr(a)
    with pytest.raises(ValueError, match=message):
        a.merge(b)
    assert repr(a) == before and a.images == 1


def test_merge_refuses_a_mass_over_no_image_for_counts_that_have_images():
    empty_with_mass = LabelStats(2)
    empty_with_mass.weight_mass = np.zeros(2)
    with pytest.raises(ValueError, match="other: expected no weight_mass"):
        _stats([[0, 1]], weights=None).merge(empty_with_mass)


def test_equality_compares_presence_and_values():
    assert _stats([[0, 1]]) == _stats([[0, 1]])
    assert _stats([[0, 1]]) != _stats([[0, 1]], weights=(1.0, 2.0))
    assert _stats([[0, 1]]) != _stats([[0, 1]], weights=None)
    assert _stats([[0, 1]], weights=None) == _stats([[0, 1]], weights=None)


def test_update_and_update_labels_leave_the_mass_alone():
    stats = _stats([[0, 1, 1]])
    stats.update_labels(np.array([1, 1]))
    stats.update(np.ones((1, 2, 3)))
    np.testing.assert_array_equal(stats.weight_mass, [1.0, 6.0])
    assert LabelStats(2).weight_mass is None
    fresh = LabelStats(2)
    fresh.update_labels(np.array([0, 1]))
    assert fresh.weight_mass is None


def test_repr_shows_the_mass_only_when_there_is_one():
    assert repr(_stats([[0, 1, 1]])).endswith("skipped=0, weight_mass=[1.0, 6.0])")
    assert "weight_mass" not in repr(_stats([[0, 1, 1]], weights=None))


def test_json_round_trip_keeps_the_mass_bit_exact(tmp_path):
    stats = _stats([[0, 1, 1]], weights=(0.1, 1 / 3))
    text = stats.to_json()
    payload = json.loads(text)
    assert payload["version"] == 2 and payload["weight_mass"] == stats.weight_mass.tolist()
    back = LabelStats.from_json(text)
    assert back == stats and back.weight_mass.tobytes() == stats.weight_mass.tobytes()
    (tmp_path / "s.json").write_text(text)
    assert LabelStats.from_json(tmp_path / "s.json") == stats


def test_json_without_a_mass_is_the_version_1_document_and_an_old_one_loads_as_none():
    old = LabelStats.from_json(OLD_JSON)
    assert old.weight_mass is None and old.voxels == 4 and old.skipped == [("b.nii", "4D")]
    assert old.to_json() == OLD_JSON  # written byte for byte as before
    assert 1 in VERSIONS and 2 in VERSIONS


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.update(weight_mass=[1.0]), r"data\['weight_mass'\]: expected 2 finite numbers >= 0"),
    (lambda p: p.update(weight_mass=[1.0, -2.0]), r"data\['weight_mass'\]: expected 2 finite numbers >= 0"),
    (lambda p: p.update(weight_mass=None), r"data\['weight_mass'\]: expected 2 finite numbers >= 0"),
    (lambda p: p.update(version=3), r"data: expected a version in \[1, 2\], got 3"),
    (lambda p: p.update(version=True), r"data: expected a version in \[1, 2\], got True"),
])
def test_json_with_a_bad_mass_or_version_raises(edit, message):
    payload = json.loads(_stats([[0, 1]]).to_json())
    edit(payload)
    with pytest.raises(ValueError, match=message):
        LabelStats.from_json(json.dumps(payload))


def test_from_pipeline_mass_survives_merge_and_json():
    items = [{"label": np.array([[0, 1, 1, 0, 1, 1]])}, {"label": np.array([[1, 0, 0, 0, 1, 0]])},
             {"label": np.array([[0, 0, 1, 1, 1, 1]])}]
    whole = LabelStats.from_pipeline(_weighted, items, progress=False)
    np.testing.assert_array_equal(whole.positives, [8.0, 10.0])
    np.testing.assert_array_equal(whole.weight_mass, [8 * 0.5, 10 * 4.0])  # by hand: counts x weight
    halves = LabelStats.from_pipeline(_weighted, items[:1], progress=False)
    halves.merge(LabelStats.from_pipeline(_weighted, items[1:], progress=False))
    assert halves == whole
    assert LabelStats.from_json(halves.to_json()) == whole
    unweighted = LabelStats.from_pipeline(lambda item: item, items, progress=False)
    with pytest.raises(ValueError, match="other: expected a weight_mass"):
        halves.merge(unweighted)


def _rank_main(rank: int, init_file: str, out_dir: str) -> None:
    """Every case on both ranks, in order; each records its mass (or error) and its counts."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        cases = {  # per rank: the stats it holds before the all_reduce
            "both": [_stats([[0, 1, 1]]), _stats([[1, 1], [0, 0]], weights=(2.0, 5.0))],
            "neither": [_stats([[0, 1]], weights=None), _stats([[1]], weights=None)],
            "rank1_empty": [_stats([[0, 1, 1]]), LabelStats(2)],
            "rank1_lacks": [_stats([[0, 1, 1]]), _stats([[1]], weights=None)],
        }
        results = {}
        for name, per_rank in cases.items():
            stats = per_rank[rank]
            try:
                stats.all_reduce()
                results[name] = {"stats": stats.to_json()}
            except ValueError as err:
                results[name] = {"error": str(err), "images": stats.images}
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="torch.distributed with the gloo backend is not available")
def test_gloo_all_reduce_sums_the_mass_and_ranks_agree_on_presence(tmp_path):
    mp.spawn(_rank_main, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    expected = {
        "both": _stats([[0, 1, 1]]).merge(_stats([[1, 1], [0, 0]], weights=(2.0, 5.0))),
        "neither": _stats([[0, 1]], weights=None).merge(_stats([[1]], weights=None)),
        "rank1_empty": _stats([[0, 1, 1]]),
    }
    np.testing.assert_array_equal(expected["both"].weight_mass, [1.0 + 2 * 2.0, 6.0 + 2 * 5.0])  # by hand
    for rank in range(WORLD):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for name, stats in expected.items():
            assert LabelStats.from_json(got[name]["stats"]) == stats, (name, rank)
        assert got["rank1_lacks"]["error"].startswith("weight_mass: expected one on every rank that counted images")
        assert got["rank1_lacks"]["images"] == 1  # the counts were left unsummed
