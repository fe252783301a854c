"""The box-restricted window sums against direct sums on the whole (zero-padded) volume."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxweight.stats.crop_boxes import box_window_sums, foreground_box, window_sums


def _direct(full: np.ndarray, axis: int, size: int, starts: int) -> np.ndarray:
    return np.stack([np.take(full, range(t, t + size), axis=axis).sum(axis=axis, dtype=np.uint64)
                     for t in range(starts)], axis=axis)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2), st.integers(1, 9), st.integers(0, 6), st.integers(1, 7), st.integers(0, 2**31 - 1),
       st.sampled_from([1, 3, 1 << 22]))
def test_window_sums_of_a_box_equal_the_padded_volume(axis, m, origin, size, seed, bound):
    """Property: ``x`` placed at ``origin`` of a zero volume gives, on every axis and path (the row product, the
    turned rows, running sums, sliding slabs), the same window sums as the volume itself."""
    rng = np.random.default_rng(seed)
    shape = [3, 4, 5]
    shape[axis] = m
    x = rng.integers(0, bound + 1, shape).astype(np.uint32 if bound > 255 else np.uint8)
    length = origin + m + rng.integers(0, 4)
    starts = max(1, length - size + 1) if size <= length else 1
    padded_shape = list(shape)
    padded_shape[axis] = max(length, size)
    full = np.zeros(padded_shape, dtype=np.uint64)
    index = [slice(None)] * 3
    index[axis] = slice(origin, origin + m)
    full[tuple(index)] = x
    out = window_sums(x, axis, size, starts, bound, origin)
    assert out.dtype.kind == "u"
    np.testing.assert_array_equal(out.astype(np.uint64), _direct(full, axis, size, starts))


@pytest.mark.parametrize("order", ["C", "F"])
def test_foreground_box_is_the_bounding_box_of_the_labels(order, rng):
    """Oracle: ``np.nonzero``'s extremes, on C and Fortran (NIfTI) arrays, 1-D to 3-D; none without labels."""
    for shape in ((7,), (6, 5), (5, 6, 7)):
        label = np.zeros(shape, dtype=np.uint16, order=order)
        points = tuple(rng.integers(0, n, 3) for n in shape)
        label[points] = rng.integers(1, 9, 3)
        hits = np.nonzero(label)
        assert foreground_box(label) == tuple(slice(int(h.min()), int(h.max()) + 1) for h in hits)
        assert foreground_box(np.zeros(shape, dtype=np.uint8, order=order)) is None
    assert foreground_box(np.zeros((0, 3), dtype=np.uint8)) is None


def test_box_window_sums_equal_the_whole_volume(rng):
    """Oracle: direct 3-D crop sums over the whole volume of two classes, from the box cut only."""
    label = np.zeros((12, 10, 9), dtype=np.uint8)
    label[3:7, 2:9, 4:6] = rng.integers(0, 3, (4, 7, 2))
    box = foreground_box(label)
    size, starts = (5, 4, 3), (8, 7, 7)
    inside = np.stack([label[box] == k for k in (1, 2)]).view(np.uint8)
    out = box_window_sums(inside, box, size, starts, [1, 0, 2])
    for k, sums in zip((1, 2), out, strict=True):
        indicator = (label == k).astype(np.uint64)
        expected = np.array([[[indicator[a:a + 5, b:b + 4, c:c + 3].sum() for c in range(7)] for b in range(7)]
                             for a in range(8)])
        np.testing.assert_array_equal(sums.astype(np.uint64), expected)
