"""scan_labels split by rank and ``voxweight stats`` under torchrun: both equal one process exactly.

Oracle: the same call in one process without a process group (itself checked against ``np.bincount`` in
test_scan.py, and here once more). Two gloo ranks (torch.multiprocessing, one pair for the module) run
every case: uneven shares (3 files), a rank without files (1 file), the largest class on one rank only
(either rank), skipped files on both ranks, ``strict`` whose first unreadable file is on rank 1, no
readable file, ``shard=False``, and ranks that disagree (files, options, a missing path); each rank also
records which files it read. The command line runs in those ranks, and once under a real ``torchrun``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.stats import scan_worker
from voxweight import LabelStats, scan_labels
from voxweight.cli import main
from voxweight.stats.distributed import TORCHRUN_ENV, torchrun_process_group

needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available")
WORLD = scan_worker.WORLD


def _write(path: Path, array: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))


def _folders(root: Path) -> dict[str, Path]:
    """The datasets; file ``i`` of a sorted folder lands on rank ``i % 2``."""
    rng = np.random.default_rng(17)
    layouts = {  # per file: the largest label + 1, or "corrupt" / "fractional"
        "k_on_rank1": [3, 6, 2],  # classes 3-5 only in file 1 (rank 1); rank 0 alone would infer 3 classes
        "k_on_rank0": [5, 2, 3],  # classes 3-4 only in file 0 (rank 0)
        "one_file": [4],  # rank 1 gets no file
        "skipped": [3, "corrupt", "fractional", 4, 2],  # the first unreadable file (1) is on rank 1
        "unreadable": ["corrupt", "corrupt"],
    }
    folders = {}
    for name, layout in layouts.items():
        folder = root / name
        folder.mkdir()
        for i, kind in enumerate(layout):
            path = folder / f"case{i}.nii.gz"
            if kind == "corrupt":
                path.write_bytes(b"not a nifti file")
            elif kind == "fractional":
                _write(path, np.full((3, 3, 2), 0.5, dtype=np.float32))
            else:
                _write(path, rng.integers(0, kind, size=(5 + i, 4, 3)).astype(np.uint8))
        folders[name] = folder
    return folders


def _same(case: tuple) -> list[tuple]:
    return [case] * WORLD


def _cases(folders: dict[str, Path], root: Path) -> dict[str, list[tuple]]:
    """``name -> [what rank 0 runs, what rank 1 runs]``: errors between valid cases (no rank is left behind)."""
    d = {k: str(v) for k, v in folders.items()}
    cli = ["stats", d["skipped"], "--no-progress", "--allow-skipped", "--json"]
    return {
        "k_on_rank1": _same(("scan", d["k_on_rank1"], {})),
        "different_files": [("scan", d["k_on_rank1"], {}), ("scan", d["k_on_rank0"], {})],
        "k_on_rank0": _same(("scan", d["k_on_rank0"], {})),
        "missing_on_rank1": [("scan", d["k_on_rank0"], {}), ("scan", str(root / "missing"), {})],
        "one_file": _same(("scan", d["one_file"], {})),
        "strict_differs": [("scan", d["one_file"], {"strict": False}), ("scan", d["one_file"], {"strict": True})],
        "one_file_k7": _same(("scan", d["one_file"], {"num_classes": 7})),
        "num_classes_differs": [("scan", d["one_file"], {"num_classes": 6}),
                                ("scan", d["one_file"], {"num_classes": 7})],
        "bad_num_classes_on_rank1": [("scan", d["one_file"], {"num_classes": 4}),
                                     ("scan", d["one_file"], {"num_classes": 0})],
        "skipped": _same(("scan", d["skipped"], {})),
        "strict": _same(("scan", d["skipped"], {"strict": True})),
        "unreadable": _same(("scan", d["unreadable"], {})),
        "shard_false": _same(("scan", d["k_on_rank1"], {"shard": False})),
        "shard_true": _same(("scan", d["k_on_rank1"], {"shard": True})),
        "cli": [("cli", [*cli, str(root / "rank0.out.json")], {}), ("cli", [*cli, str(root / "rank1.out.json")], {})],
        "cli_error": _same(("cli", ["stats", str(folders["unreadable"] / "case0.nii.gz"), "--no-progress"], {})),
        "skipped_again": _same(("scan", d["skipped"], {})),
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(folders, root, [rank 0's results, rank 1's])``: one pair of gloo processes for the module."""
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available")
    root = tmp_path_factory.mktemp("sharded")
    folders = _folders(root)
    mp.spawn(scan_worker.run, args=(str(root / "init"), str(root), _cases(folders, root)), nprocs=WORLD, join=True)
    return folders, root, [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)]


def _alone(paths, **options) -> dict:
    """What one process without a process group returns (stats or error) and warns."""
    assert not dist.is_initialized()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = {"stats": scan_labels(paths, progress=False, **options)}
        except (ValueError, TypeError, OSError) as err:
            out = {"error": f"{type(err).__name__}: {err}"}
    out["warnings"] = [str(w.message) for w in caught if w.category is UserWarning]
    return out


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir())


SHARDED = {"k_on_rank1": "k_on_rank1", "k_on_rank0": "k_on_rank0", "one_file": "one_file", "skipped": "skipped",
           "skipped_again": "skipped", "shard_true": "k_on_rank1"}  # case -> its folder


@needs_gloo
@pytest.mark.parametrize("name", sorted(SHARDED))
def test_sharded_scan_equals_one_process_and_reads_each_file_once(run, name):
    folders, _, ranks = run
    folder = folders[SHARDED[name]]
    expected = _alone(folder)
    files = _files(folder)
    for rank, results in enumerate(ranks):
        got = results[name]
        assert LabelStats.from_json(got["stats"]) == expected["stats"], (name, rank)
        assert got["warnings"] == expected["warnings"]  # the same skipped files, in file order
        assert got["read"] == files[rank::WORLD]  # this rank's share only; rank 1 of "one_file" reads nothing


@needs_gloo
def test_inferred_classes_found_on_one_rank_only_count_everywhere(run):
    folders, _, ranks = run
    arrays = [np.asarray(nib.load(f).dataobj) for f in _files(folders["k_on_rank1"])]
    counts = np.sum([np.bincount(a.ravel(), minlength=6) for a in arrays], axis=0)
    for results in ranks:
        stats = LabelStats.from_json(results["k_on_rank1"]["stats"])
        assert stats.num_classes == 6 and stats.positives.tolist() == counts.tolist()
        assert stats.images_with.tolist() == [3, 3, 2, 1, 1, 1] and stats.voxels == sum(a.size for a in arrays)
        assert LabelStats.from_json(results["k_on_rank0"]["stats"]).num_classes == 5
        assert LabelStats.from_json(results["one_file_k7"]["stats"]) == _alone(folders["one_file"],
                                                                              num_classes=7)["stats"]


@needs_gloo
def test_skipped_files_of_both_ranks_are_listed_in_file_order(run):
    folders, _, ranks = run
    files = _files(folders["skipped"])
    for results in ranks:
        skipped = LabelStats.from_json(results["skipped"]["stats"]).skipped
        assert [path for path, _ in skipped] == [files[1], files[2]]  # rank 1's, then rank 0's
        assert skipped[0][1].startswith("ImageFileError") and "whole-number" in skipped[1][1]


@needs_gloo
@pytest.mark.parametrize("name", ["strict", "unreadable"])
def test_errors_after_counting_are_one_process_errors_on_every_rank(run, name):
    folders, _, ranks = run
    expected = _alone(folders["skipped" if name == "strict" else name], strict=name == "strict")["error"]
    assert expected.startswith("ValueError: ")
    for results in ranks:
        assert results[name]["error"] == expected  # strict: rank 0 names rank 1's file, as one process does


@needs_gloo
def test_ranks_that_disagree_all_raise_instead_of_waiting(run):
    _, root, (zero, one) = run
    for results in (zero, one):
        assert results["different_files"]["error"].startswith(
            "ValueError: paths: expected the same value on every rank of a sharded scan (shard=), got 3 files")
        assert results["strict_differs"]["error"].startswith(
            "ValueError: strict: expected the same value on every rank of a sharded scan (shard=), got False "
            "on rank 0 and True on rank 1")
        assert results["num_classes_differs"]["error"].startswith(
            "ValueError: num_classes: expected the same value on every rank")
    missing = f"paths: expected an existing file or directory, got {str(root / 'missing')!r}"
    assert one["missing_on_rank1"]["error"] == f"FileNotFoundError: {missing}"
    assert zero["missing_on_rank1"]["error"] == f"FileNotFoundError: {missing} (on rank 1)"
    assert one["bad_num_classes_on_rank1"]["error"] == "ValueError: num_classes: expected a positive int, got 0"
    assert zero["bad_num_classes_on_rank1"]["error"] == one["bad_num_classes_on_rank1"]["error"] + " (on rank 1)"


@needs_gloo
def test_shard_false_reads_every_file_on_every_rank(run):
    folders, _, ranks = run
    for results in ranks:
        assert results["shard_false"]["read"] == _files(folders["k_on_rank1"])
        assert LabelStats.from_json(results["shard_false"]["stats"]) == _alone(folders["k_on_rank1"])["stats"]


def _command(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@needs_gloo
def test_command_in_ranks_writes_and_prints_on_rank_0_only(run, tmp_path):
    folders, root, (zero, one) = run
    alone = tmp_path / "alone.json"
    code, out, err = _command(["stats", str(folders["skipped"]), "--no-progress", "--allow-skipped",
                               "--json", str(alone)])
    assert (zero["cli"]["code"], zero["cli"]["stdout"], zero["cli"]["stderr"]) == (code, out, err)
    assert code == 0 and "counted 3 of 5 files, skipped 2" in out and err.count("voxweight stats: skipped") == 2
    assert (root / "rank0.out.json").read_bytes() == alone.read_bytes()
    assert (one["cli"]["code"], one["cli"]["stdout"], one["cli"]["stderr"]) == (0, "", "")
    assert not (root / "rank1.out.json").exists()
    code, out, err = _command(["stats", str(folders["unreadable"] / "case0.nii.gz"), "--no-progress"])
    assert (zero["cli_error"]["code"], zero["cli_error"]["stderr"]) == (code, err) and code == 1
    assert err.startswith(f"voxweight stats: error: {folders['unreadable'] / 'case0.nii.gz'}: ImageFileError")
    assert (one["cli_error"]["code"], one["cli_error"]["stdout"], one["cli_error"]["stderr"]) == (1, "", "")
    assert zero["initialised_after"] and one["initialised_after"]


@needs_gloo
def test_torchrun_stats_writes_the_one_process_json(tmp_path):
    folder = _folders(tmp_path)["skipped"]
    argv = ["stats", str(folder), "--no-progress", "--allow-skipped", "--json"]
    code, out, err = _command([*argv, str(tmp_path / "alone.json")])
    env = {k: v for k, v in os.environ.items() if k not in (*TORCHRUN_ENV, "MASTER_PORT", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "voxweight", *argv, str(tmp_path / "torchrun.json")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == code == 0, done.stderr
    assert (tmp_path / "torchrun.json").read_bytes() == (tmp_path / "alone.json").read_bytes()
    assert done.stdout == out  # rank 0's table and summary, once
    assert [line for line in done.stderr.splitlines() if line.startswith("voxweight")] == err.splitlines()
    assert len(err.splitlines()) == 2  # the two skipped files, named once (by rank 0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@needs_gloo
def test_torchrun_process_group_joins_from_the_environment_and_leaves(monkeypatch):
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    for name in (*TORCHRUN_ENV, "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with torchrun_process_group() as where:
        assert where == (0, 1) and not dist.is_initialized()  # not under torchrun: nothing to join
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(KeyError, match="inside"), torchrun_process_group() as where:
        assert where == (0, 1) and dist.is_initialized() and dist.get_backend() == "gloo"
        raise KeyError("inside")
    assert not dist.is_initialized()  # destroyed however the block ended
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with torchrun_process_group() as where:
            assert where == (0, 1)
        assert dist.is_initialized()  # a group it did not make is left alone
    finally:
        dist.destroy_process_group()


def test_shard_option_is_checked(tmp_path):
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    _write(tmp_path / "a.nii.gz", np.array([[[0, 1], [1, 2]]], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"^shard: expected an initialised torch\.distributed process group for "
                                         r"shard=True .*got none"):
        scan_labels(tmp_path, shard=True, progress=False)
    with pytest.raises(TypeError, match=r"^shard: expected True, False or None, got"):
        scan_labels(tmp_path, shard="yes", progress=False)
    assert scan_labels(tmp_path, shard=False, progress=False) == scan_labels(tmp_path, progress=False)


@needs_gloo
def test_one_rank_group_scans_alone(tmp_path):
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    _write(tmp_path / "a.nii.gz", np.array([[[0, 1], [1, 2]]], dtype=np.uint8))
    expected = scan_labels(tmp_path, progress=False)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert scan_labels(tmp_path, shard=True, progress=False) == expected
        assert scan_labels(tmp_path, progress=False) == expected
    finally:
        dist.destroy_process_group()
