"""multiclass_balance_weights on sparse, huge class ids: memory follows the label, never its largest id.

Oracles: numpy's ``np.unique(return_inverse, return_counts)`` per volume with the documented formulas in
float64; a subprocess under an address-space limit of its size + 2 GiB (``resource.RLIMIT_AS``), where the
former ``[*, max id + 1]`` table (24 GB for an id of 3e9) cannot be allocated; and the dense path's own
result, which the sparse path must equal bit for bit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from voxweight.maps import multiclass_balance_weights

MODES = ["balanced", "inverse_frequency", "sqrt_inverse"]


def unique_oracle(lab: np.ndarray, mode: str, spatial_dims: int, max_weight: float | None = None) -> np.ndarray:
    """Per leading index: ``a_c`` from the counts of the ids present (np.unique), float64."""
    lead = lab.reshape(-1, *lab.shape[lab.ndim - spatial_dims:])
    out = np.empty(lead.shape)
    for i, volume in enumerate(lead):
        ids, inverse, counts = np.unique(volume, return_inverse=True, return_counts=True)
        f = counts / volume.size
        a = {"balanced": 1 / (len(ids) * f), "inverse_frequency": 1 / f, "sqrt_inverse": 1 / np.sqrt(f)}[mode]
        a = np.ones_like(a) if len(ids) == 1 else a
        a = a if max_weight is None else np.minimum(a, max_weight)
        out[i] = a[inverse.reshape(volume.shape)]
    return out.reshape(lab.shape)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["ndarray", "tensor"])
def test_huge_ids_match_unique_oracle(mode, kind):
    lab = np.zeros((2, 4, 4, 4), dtype=np.int64)
    lab[0, 0, 0, :2] = 3_000_000_000
    lab[1, 1, 1, 1], lab[1, 0, 0, :3] = 2**62, 7
    label = lab if kind == "ndarray" else torch.from_numpy(lab)
    out = multiclass_balance_weights(label, mode=mode)
    assert type(out) is type(label) and out.dtype in (np.float32, torch.float32) and tuple(out.shape) == lab.shape
    np.testing.assert_allclose(np.asarray(out), unique_oracle(lab, mode, 3), rtol=1e-6)


def test_huge_ids_with_max_weight():
    lab = np.array([[0, 0, 0, 9_000_000_000]])
    out = multiclass_balance_weights(lab, mode="inverse_frequency", max_weight=2.5, spatial_dims=1)
    np.testing.assert_allclose(out, [[4 / 3, 4 / 3, 4 / 3, 2.5]], rtol=1e-6)  # hand-computed: 1/f = 4/3 and 4


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=30), mode=st.sampled_from(MODES))
def test_any_int64_ids_property(ids, mode):
    """Property: any non-negative int64 ids give finite weights >= 0 equal to the np.unique oracle."""
    lab = np.asarray(ids, dtype=np.int64)
    out = multiclass_balance_weights(lab, mode=mode, spatial_dims=1)
    assert np.isfinite(out).all() and out.min() >= 0
    np.testing.assert_allclose(out, unique_oracle(lab, mode, 1), rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(ids=st.lists(st.integers(0, 5), min_size=2, max_size=40), mode=st.sampled_from(MODES),
       shift=st.sampled_from([10**6, 3 * 10**9, 2**61]))
def test_sparse_path_equals_dense_path(ids, mode, shift):
    """Oracle: relabelling the ids (0..5 -> shift + id: sparse) changes no weight, bit for bit."""
    dense = np.asarray(ids, dtype=np.int64)
    expected = multiclass_balance_weights(dense, mode=mode, spatial_dims=1)
    np.testing.assert_array_equal(multiclass_balance_weights(dense + shift, mode=mode, spatial_dims=1), expected)


def test_negative_ids_still_refused():
    with pytest.raises(ValueError, match=r"^label: expected class indices in \[0, "):
        multiclass_balance_weights(np.array([-1, 3_000_000_000]), spatial_dims=1)


def test_huge_id_within_bounded_memory():
    """A subprocess limited to its size + 2 GiB of address space computes the map of an id of 3e9 (the former
    table needed 24 GB); the limit is real: a 24 GB allocation fails there."""
    code = textwrap.dedent("""
        import re, resource
        import numpy as np, torch
        from voxweight.maps import multiclass_balance_weights
        size = int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 2**30, resource.RLIM_INFINITY))
        lab = np.zeros((1, 16, 16, 16), dtype=np.int64)
        lab[0, 0, 0, :3] = 3_000_000_000
        w = multiclass_balance_weights(lab)
        print(repr(float(w[0, 0, 0, 0])), repr(float(w[0, 1, 1, 1])))
        try:
            torch.zeros(3_000_000_001, dtype=torch.int64)
            print("limit not enforced")
        except RuntimeError:
            print("limit enforced")
    """)
    if not sys.platform.startswith("linux"):
        pytest.skip("needs /proc/self/status and RLIMIT_AS (Linux)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = proc.stdout.split("\n")[:2]
    v = 16**3  # hand-computed "balanced": 1 / (2 * 3 / V) and 1 / (2 * (V - 3) / V)
    assert [float(x) for x in first.split()] == pytest.approx([v / 6, v / (2 * (v - 3))], rel=1e-6)
    assert second == "limit enforced"
