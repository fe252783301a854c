"""LabelStats.all_reduce over 2 gloo processes: the sum of half-scans equals a single-process scan."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from voxweight import LabelStats, scan_labels

WORLD = 2
K = 6


def _rank_main(rank: int, init_file: str, files: list[str], out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        try:  # ranks that disagree on num_classes all get the same ValueError (no rank hangs)
            LabelStats(3 + rank).all_reduce()
            mismatch = None
        except ValueError as err:
            mismatch = str(err)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the bad file on one rank
            stats = scan_labels(files[rank::WORLD], num_classes=K, progress=False, shard=False)
        result = stats.all_reduce()
        payload = {"stats": stats.to_json(), "mismatch": mismatch, "same_object": result is stats}
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(payload))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_gloo_all_reduce_equals_single_process_scan(tmp_path, rng):
    folder = tmp_path / "labels"
    folder.mkdir()
    for i in range(7):
        array = rng.integers(0, K - 1 if i % 3 else K, size=(6 + i, 5, 4)).astype(np.uint8)
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(folder / f"case{i}.nii.gz"))
    (folder / "case7.nii.gz").write_bytes(b"corrupt")  # lands on rank 1
    files = sorted(str(p) for p in folder.iterdir())
    with pytest.warns(UserWarning, match="skipped 1 of 8"):
        expected = scan_labels(folder, num_classes=K, progress=False)

    mp.spawn(_rank_main, args=(str(tmp_path / "init"), files, str(tmp_path)), nprocs=WORLD, join=True)

    for rank in range(WORLD):
        payload = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert LabelStats.from_json(payload["stats"]) == expected
        assert payload["same_object"]
        assert payload["mismatch"].startswith("num_classes: expected the same value on every rank, got values "
                                              "from 3 to 4")


def test_all_reduce_without_a_process_group_raises():
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match=r"all_reduce: expected an initialised torch\.distributed process group"):
        LabelStats(2).all_reduce()
