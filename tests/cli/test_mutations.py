"""Mutated NIfTI files (hypothesis): every command gives a clear answer, within bounded memory.

Property: for a valid label file with bytes flipped, header fields forged or the file cut short, ``stats``
either counts what nibabel reads (``np.bincount`` of ``nib.load(path).dataobj``) or names the file with a
reason and exits 1; ``weights`` and ``preview --weights`` write a finite map or name the file and exit 1.
Never a traceback, never another exit code, never a temporary file left, and the Python heap (tracemalloc,
which sees numpy's buffers) stays under a few MiB for these few-KiB files.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import struct
import tempfile
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxweight.cli import main

MAX_HEAP = 32 * 2**20
# (offset, struct format) of the NIfTI-1 header fields a forger would touch
FIELDS = [(40, "<h"), (42, "<h"), (44, "<h"), (46, "<h"), (48, "<h"), (70, "<h"), (72, "<h"), (108, "<f"),
          (112, "<f"), (116, "<f")]
FORGED = st.one_of(st.integers(-32768, 32767), st.sampled_from([0.0, -1.0, 1e30, float("nan"), float("inf")]))


@st.composite
def mutated_files(draw):
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=2, max_size=3)))
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.float32]))
    data = draw(st.lists(st.integers(0, 3), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype).reshape(shape), np.diag([1.0, 1.0, 2.0, 1.0]))
    raw = bytearray(image.to_bytes())
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "field", "cut"]))
        if kind == "flip" and raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        elif kind == "field" and len(raw) >= 120:
            offset, fmt = draw(st.sampled_from(FIELDS))
            value = draw(FORGED)
            value = int(value) if fmt == "<h" and isinstance(value, int) else value
            if fmt == "<h" and not isinstance(value, int):
                value = -1
            raw[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
        else:
            raw = raw[:draw(st.integers(0, len(raw)))]
    compressed = draw(st.booleans())
    return (gzip.compress(bytes(raw)) if compressed else bytes(raw)), (".nii.gz" if compressed else ".nii")


def run(argv: list[str]) -> tuple[int, str, str, int]:
    """``main(argv)`` with its exit code, stdout, stderr and the peak traced heap."""
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return code, out.getvalue(), err.getvalue(), peak


def nibabel_counts(path: Path) -> np.ndarray | None:
    """What nibabel reads, counted, when it is a valid 2D/3D label map; else None."""
    try:
        data = np.asanyarray(nib.load(str(path)).dataobj)
    except Exception:  # the oracle only needs "nibabel could not read it"
        return None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim > 3 or data.size == 0 or not np.all(np.isfinite(data)) or np.any(data < 0) \
            or np.any(data != np.round(data)):
        return None
    return np.bincount(data.astype(np.int64).ravel())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_files())
def test_every_command_answers_a_mutated_file_clearly(case):
    payload, suffix = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, f"label{suffix}")
        path.write_bytes(payload)
        stats_json = Path(folder, "s.json")
        code, _, err, peak = run(["stats", str(path), "--no-progress", "--json", str(stats_json)])
        assert peak < MAX_HEAP
        assert "Traceback" not in err
        if code == 0:
            expected = nibabel_counts(path)
            assert expected is not None, "voxweight counted a file nibabel cannot read as labels"
            counted = json.loads(stats_json.read_text())["positives"]
            np.testing.assert_array_equal(np.trim_zeros(np.asarray(counted), "b"), np.trim_zeros(expected, "b"))
        else:
            assert code == 1 and f"error: {path}: " in err, err
        for argv in (["weights", str(path), "{folder}/w.nii.gz", "--class-balance"],
                     ["preview", str(path), "--weights", str(path), "--out", "{folder}/p.png"]):
            code, _, err, peak = run([a.format(folder=folder) for a in argv])
            assert peak < MAX_HEAP
            assert code in (0, 1) and "Traceback" not in err
            if code == 1:
                assert f"error: {path}: " in err, err
        assert not [p for p in Path(folder).iterdir() if p.name.startswith(".")]

