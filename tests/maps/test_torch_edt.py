"""backend="torch": scipy's EDT with ``sampling`` as the oracle (1-4 dims, anisotropic, batched, degenerate
masks), the ``edt`` backend in agreement, a float64 brute force for the 1-D min-plus pass and under
hypothesis, and CUDA runs (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import voxweight.maps.distance as dist
from voxweight.maps.distance import distance_to_foreground, distance_to_interface, signed_distance
from voxweight.maps.distance_checks import resolve_backend
from voxweight.maps.edt_passes import axis_pass, min_plus_pass, scan_pass
from voxweight.maps.torch_edt import edt_squared, spacing_scale, torch_distance

FUNCTIONS = {"foreground": distance_to_foreground, "interface": distance_to_interface, "signed": signed_distance}


def _scipy_map(mask: np.ndarray, spacing, kind: str) -> np.ndarray:
    """Oracle: scipy's EDT (float64) of one volume; ``inf`` where there is nothing to measure to."""
    if kind == "foreground":
        return ndi.distance_transform_edt(~mask, sampling=spacing) if mask.any() else np.full(mask.shape, np.inf)
    if mask.all() or not mask.any():
        two_sided = np.full(mask.shape, np.inf)
    else:
        two_sided = np.where(mask, ndi.distance_transform_edt(mask, sampling=spacing),
                             ndi.distance_transform_edt(~mask, sampling=spacing))
    return np.where(mask, -two_sided, two_sided) if kind == "signed" else two_sided


def _scipy_batch(mask: np.ndarray, spacing, kind: str) -> np.ndarray:
    """Oracle: :func:`_scipy_map` on each volume of ``[..., *spatial]`` (``len(spacing)`` spatial axes)."""
    spatial = mask.shape[mask.ndim - len(spacing):]
    flat = mask.reshape(-1, *spatial)
    return np.stack([_scipy_map(v, spacing, kind) for v in flat]).reshape(mask.shape)


def _blobs(shape, seed, density=0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndi.binary_dilation(rng.random(shape) < density)


CASES = [
    ((37,), (0.7,)),
    ((19, 23), (1.7, 0.6)),
    ((11, 13, 9), (0.7, 1.3, 2.1)),
    ((9, 7, 11), (3.0, 0.5, 1.0)),
    ((5, 6, 4, 7), (1.0, 2.0, 1.0, 0.5)),
]


@pytest.mark.parametrize("kind", list(FUNCTIONS))
@pytest.mark.parametrize(("shape", "spacing"), CASES)
def test_matches_scipy_on_random_masks(shape, spacing, kind):
    """Oracle: scipy.ndimage.distance_transform_edt(..., sampling=spacing), 1-4 dims, numpy in, numpy out."""
    mask = _blobs(shape, seed=len(shape) + int(10 * spacing[0]))
    assert mask.any() and not mask.all()
    out = FUNCTIONS[kind](mask, spacing=spacing, backend="torch")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == shape
    np.testing.assert_allclose(out, _scipy_map(mask, spacing, kind), rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", list(FUNCTIONS))
@pytest.mark.parametrize(("shape", "spacing"), CASES[:4])
def test_edt_backend_agrees(shape, spacing, kind):
    """Oracle: the ``edt`` backend (itself held to scipy) gives the same map, to float32 rounding."""
    mask = _blobs(shape, seed=3 * len(shape), density=0.1)
    np.testing.assert_allclose(FUNCTIONS[kind](mask, spacing=spacing, backend="torch"),
                               FUNCTIONS[kind](mask, spacing=spacing, backend="edt"), rtol=1e-6)


@pytest.mark.parametrize("kind", list(FUNCTIONS))
def test_batch_of_volumes_each_its_own(kind):
    """Oracle: scipy per volume; leading dims are independent, an empty and a full volume get their inf."""
    masks = np.stack([_blobs((8, 9, 7), seed=s) for s in range(4)]).reshape(2, 2, 8, 9, 7)
    masks[0, 1] = False
    masks[1, 0] = True
    spacing = (1.5, 0.5, 2.0)
    t = torch.as_tensor(masks.astype(np.uint8))
    out = FUNCTIONS[kind](t, spacing=spacing, backend="torch", spatial_dims=3)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.device == t.device
    expected = _scipy_batch(masks, spacing, kind)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    # the CPU backends take the same batch one volume at a time
    for backend in ("edt", "scipy"):
        np.testing.assert_allclose(FUNCTIONS[kind](masks, spacing=spacing, backend=backend, spatial_dims=3),
                                   expected, rtol=1e-6)


def test_batch_is_not_a_volume():
    """Property: with spatial_dims=2 distances never cross the leading axis (one foreground voxel in one slice)."""
    mask = np.zeros((3, 5, 5), dtype=bool)
    mask[1, 2, 2] = True
    out = distance_to_foreground(mask, backend="torch", spatial_dims=2)
    assert np.isposinf(out[0]).all() and np.isposinf(out[2]).all()
    np.testing.assert_allclose(out[1], ndi.distance_transform_edt(~mask[1]), rtol=1e-6)
    assert np.isfinite(distance_to_foreground(mask, backend="torch")).all()  # all 3 axes spatial by default


@pytest.mark.parametrize("shape", [(1,), (1, 1, 1), (4, 5, 6), (2, 3, 4, 5)])
def test_degenerate_masks_as_the_other_backends(shape):
    """Documented: empty -> inf, full -> 0 to the foreground and +-inf to the (absent) interface; a single
    voxel of either side matches scipy."""
    empty, full = np.zeros(shape, dtype=bool), np.ones(shape, dtype=bool)
    assert np.isposinf(distance_to_foreground(empty, backend="torch")).all()
    assert (distance_to_foreground(full, backend="torch") == 0).all()
    for m in (empty, full):
        assert np.isposinf(distance_to_interface(m, backend="torch")).all()
    assert np.isposinf(signed_distance(empty, backend="torch")).all()
    assert np.isneginf(signed_distance(full, backend="torch")).all()
    spacing = tuple(0.5 + i for i in range(len(shape)))
    for value in (True, False):
        one = np.full(shape, not value)
        one[tuple(n // 2 for n in shape)] = value
        for kind, fn in FUNCTIONS.items():
            np.testing.assert_allclose(fn(one, spacing=spacing, backend="torch"), _scipy_map(one, spacing, kind),
                                       rtol=1e-6)


def test_zero_size_masks():
    """Documented: a zero-size mask gives an empty float32 map of its shape (tensor and numpy)."""
    assert distance_to_foreground(np.zeros((0, 3)), backend="torch").shape == (0, 3)
    out = signed_distance(torch.zeros(2, 0, 4), backend="torch", spatial_dims=2)
    assert out.shape == (2, 0, 4) and out.dtype == torch.float32


def test_hand_computed_anisotropic_2d():
    """Hand-computed: one foreground voxel at (1, 1), spacing (1, 2): d = sqrt(di^2 + (2 dj)^2)."""
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[1, 1] = True
    expected = torch.tensor([[np.hypot(abs(i - 1), 2 * abs(j - 1)) for j in range(4)] for i in range(3)])
    torch.testing.assert_close(distance_to_foreground(mask, spacing=(1.0, 2.0), backend="torch"),
                               expected.float(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("spacing", [(1e-20, 1e-5), (3e29, 1e30), (1e-30, 1e-12)])
def test_extreme_spacings_match_scipy(spacing):
    """Oracle: scipy in float64; the power-of-two scaling keeps squares of tiny and huge spacings exact."""
    mask = _blobs((12, 10), seed=5, density=0.08)
    for kind, fn in FUNCTIONS.items():
        out = fn(mask, spacing=spacing, backend="torch")
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, _scipy_map(mask, spacing, kind), rtol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 7, 33])
@pytest.mark.parametrize("tile_bytes", [1, 64, 10**9])
def test_min_plus_pass_matches_brute_force(n, tile_bytes):
    """Oracle: float64 brute force of g(i) = min_j f(j) + (s (i - j))^2, for every tiling of the work."""
    rng = np.random.default_rng(n)
    f = rng.random((5, n)) * 10
    f[rng.random((5, n)) < 0.4] = np.inf
    f[0] = np.inf  # a line with nothing to measure to
    step = 0.37
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    expected = (f[:, None, :] + (step * (i - j)) ** 2).min(-1)
    out = min_plus_pass(torch.from_numpy(f), step, tile_bytes)
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("n", [1, 2, 5, 40])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scan_pass_is_the_brute_force_first_pass(n, dtype):
    """Oracle: float64 brute force of (s min_j |i - j|)^2 over the targets j of the line; lines without a
    target, full of targets, with one target, at either end."""
    rng = np.random.default_rng(n)
    t = rng.random((9, n)) < 0.3
    t[0], t[1], t[2] = False, True, False
    t[2, 0] = True
    t[3] = False
    t[3, -1] = True
    step = 0.37
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    expected = np.where(t[:, None, :], (step * (i - j)) ** 2, np.inf).min(-1)
    out = scan_pass(torch.from_numpy(t), step, dtype)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6 if dtype == torch.float32 else 1e-15)
    assert np.isinf(out.numpy()[0]).all() and (out.numpy()[1] == 0).all()


@pytest.mark.parametrize("far", [False, True])
def test_scan_keeps_only_unreached_lines_after_the_early_check(far, monkeypatch):
    """Oracle: the float64 brute force; dense lines (every voxel within 7 of a target) leave the doubling at
    s = 8, and a line whose target is far away goes on alone."""
    import voxweight.maps.edt_passes as passes

    calls = []
    real = passes._unreached
    monkeypatch.setattr(passes, "_unreached", lambda *a: calls.append(real(*a).tolist()) or real(*a))
    n = 64
    t = np.zeros((50, n), dtype=bool)
    t[:, ::5] = True  # every voxel within 2 of a target
    t[7] = False  # a line without a target stays inf either way
    if far:
        t[9] = False
        t[9, 0] = True  # distances up to 63
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    expected = np.where(t[:, None, :], (0.7 * (i - j)) ** 2, np.inf).min(-1)
    out = scan_pass(torch.from_numpy(t), 0.7, torch.float64)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-15)
    assert calls == [[9] if far else []]


def test_scan_goes_on_in_place_when_most_lines_are_unreached():
    """Oracle: the float64 brute force on lines with one target each (all unreached at s = 8) plus dense ones."""
    rng = np.random.default_rng(0)
    n = 200
    t = np.zeros((30, n), dtype=bool)
    t[np.arange(30), rng.integers(0, n, 30)] = True
    t[:5, ::3] = True
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    expected = np.where(t[:, None, :], (1.5 * (i - j)) ** 2, np.inf).min(-1)
    np.testing.assert_allclose(scan_pass(torch.from_numpy(t), 1.5, torch.float64).numpy(), expected, rtol=1e-15)


def test_long_lines_leave_the_loop_only_when_done():
    """Property: lines whose distances reach far (one target at an end of a long line, a line of zeros next
    to a line of inf) give the brute-force pass whatever the order in which lines leave the loop."""
    n = 300
    f = torch.full((4, n), float("inf"), dtype=torch.float64)
    f[0, 0] = 0.0  # distances up to n - 1 voxels
    f[1] = 0.0  # done at once
    f[3, n // 2] = 2.0
    i = torch.arange(n, dtype=torch.float64)
    expected = torch.stack([(1.5 * i) ** 2, torch.zeros(n), torch.full((n,), float("inf")),
                            2.0 + (1.5 * (i - n // 2)) ** 2])
    torch.testing.assert_close(min_plus_pass(f, 1.5), expected, rtol=1e-15, atol=0)
    torch.testing.assert_close(min_plus_pass(f, 1.5, tile_bytes=1), expected, rtol=1e-15, atol=0)


def _brute_pass(f: np.ndarray, axis: int, step: float) -> np.ndarray:
    """Oracle: float64 brute force of g_i = min_j f_j + (step (i - j))^2 along ``axis``."""
    moved = np.moveaxis(f, axis, -1)
    n = moved.shape[-1]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return np.moveaxis((moved[..., None, :] + (step * (i - j)) ** 2).min(-1), -1, axis)


@pytest.mark.parametrize("shape", [(3, 9, 64), (5, 11, 48), (2, 6, 7, 5), (13, 32), (4, 1, 3)])
@pytest.mark.parametrize("tile_bytes", [1, None])
def test_axis_pass_along_every_axis_is_the_brute_force(shape, tile_bytes):
    """Oracle: the float64 brute force along each axis, for groups of 32, 16 and 1 neighbouring lines and
    chunks down to one group; the input is untouched (also where the grouped layout is a view of it)."""
    rng = np.random.default_rng(len(shape))
    f = rng.random(shape) * 30
    f[rng.random(shape) < 0.5] = np.inf
    x = torch.from_numpy(f)
    for axis in range(len(shape)):
        out = axis_pass(x, axis, 0.83, tile_bytes)
        np.testing.assert_array_equal(out.numpy(), _brute_pass(f, axis, 0.83))
        band = axis_pass(x, axis, 0.83, tile_bytes, band=2)
        assert (band.numpy() >= out.numpy()).all()
        # without the checks that drop finished groups (the GPU's banded mode, no host sync): the same bits
        torch.testing.assert_close(axis_pass(x, axis, 0.83, tile_bytes, band=2, checks=False), band, rtol=0, atol=0)
        torch.testing.assert_close(axis_pass(x, axis, 0.83, tile_bytes, checks=False), out, rtol=0, atol=0)
    np.testing.assert_array_equal(x.numpy(), f)


def test_small_tiles_change_nothing():
    """Property: chunked to one (line, position) pair per tile, the squared EDT is the same bits; scipy agrees."""
    mask = torch.from_numpy(_blobs((3, 6, 7, 5), seed=9, density=0.1))
    spacing = (1.1, 0.4, 2.3)
    small = edt_squared(mask, spacing, tile_bytes=1)
    torch.testing.assert_close(small, edt_squared(mask, spacing), rtol=0, atol=0)
    np.testing.assert_allclose(small.sqrt().numpy(),
                               _scipy_batch(mask.numpy(), spacing, "foreground"), rtol=1e-12)


def _brute(mask: np.ndarray, spacing) -> np.ndarray:
    """Oracle: float64 all-pairs minimum distance from each voxel to the True voxels."""
    grid = np.stack(np.indices(mask.shape), -1).reshape(-1, mask.ndim) * np.asarray(spacing, dtype=np.float64)
    points = grid[mask.reshape(-1)]
    if len(points) == 0:
        return np.full(mask.shape, np.inf)
    return np.sqrt(((grid[:, None, :] - points[None, :, :]) ** 2).sum(-1)).min(1).reshape(mask.shape)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       spacing=st.lists(st.floats(0.05, 20.0), min_size=3, max_size=3),
       seed=st.integers(0, 2**32 - 1), density=st.floats(0.0, 1.0))
def test_property_random_small_masks_match_brute_force(shape, spacing, seed, density):
    """Property: on any small mask and spacing, all three maps are the float64 brute force to float32 rounding."""
    mask = np.random.default_rng(seed).random(shape) < density
    spacing = tuple(spacing[:len(shape)])
    to_fg, to_bg = _brute(mask, spacing), _brute(~mask, spacing)
    two_sided = np.where(mask, to_bg, to_fg) if mask.any() and not mask.all() else np.full(mask.shape, np.inf)
    np.testing.assert_allclose(distance_to_foreground(mask, spacing=spacing, backend="torch"), to_fg, rtol=1e-6)
    np.testing.assert_allclose(distance_to_interface(mask, spacing=spacing, backend="torch"), two_sided, rtol=1e-6)
    np.testing.assert_allclose(signed_distance(mask, spacing=spacing, backend="torch"),
                               np.where(mask, -two_sided, two_sided), rtol=1e-6)


def test_tensor_not_mutated_and_grad_free():
    """Property: a float tensor that requires grad is read, untouched, and the map has no graph."""
    t = torch.from_numpy(_blobs((6, 7, 8), seed=2).astype(np.float32)).requires_grad_()
    before = t.detach().clone()
    out = distance_to_interface(t, spacing=(1.0, 2.0, 0.5), backend="torch")
    assert not out.requires_grad and torch.equal(t.detach(), before)
    np.testing.assert_allclose(out.numpy(), distance_to_interface(before.numpy(), spacing=(1.0, 2.0, 0.5)),
                               rtol=1e-6)


def test_auto_keeps_the_cpu_backends_and_picks_torch_off_the_cpu():
    """Documented: 'auto' on a CPU tensor is edt/scipy with numpy out; a device tensor resolves to 'torch'."""
    mask = torch.from_numpy(_blobs((6, 7, 8), seed=4))
    out = distance_to_foreground(mask)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, distance_to_foreground(mask.numpy(), backend="edt"))
    assert resolve_backend("auto", 3, on_device=True) == "torch"
    assert resolve_backend("auto", 5, on_device=True) == "torch"
    assert resolve_backend("auto", 3) == "edt" and resolve_backend("auto", 4) == "scipy"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"spatial_dims": 0}, ValueError, r"spatial_dims: expected an integer >= 1, got 0"),
    ({"spatial_dims": 4}, ValueError, r"spatial_dims: expected at most mask\.ndim = 3, got 4"),
    ({"spatial_dims": 2.0}, TypeError, r"spatial_dims: expected an integer >= 1, got float"),
    ({"spatial_dims": True}, TypeError, r"spatial_dims: expected an integer >= 1, got bool"),
    ({"spatial_dims": 2, "spacing": (1.0, 2.0, 3.0)}, ValueError, r"spacing: expected 2 values"),
    ({"backend": "troch"}, ValueError, r"backend: expected one of .* \(did you mean 'torch'\?\)"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    for fn in FUNCTIONS.values():
        with pytest.raises(error, match=match):
            fn(torch.zeros(2, 3, 4), **kwargs)


def test_bad_kind_and_spacing_scale():
    """Documented: bad arguments of the torch module name themselves; the scale is the power of two nearest
    max(spacing)."""
    with pytest.raises(ValueError, match=r"kind: expected one of"):
        torch_distance(torch.zeros(3, dtype=torch.bool), (1.0,), "inside")
    with pytest.raises(TypeError, match=r"fg: expected a bool tensor, got torch\.int64"):
        torch_distance(torch.zeros(3, dtype=torch.long), (1.0,), "signed")
    with pytest.raises(TypeError, match=r"targets: expected a bool tensor, got torch\.float32"):
        edt_squared(torch.zeros(3), (1.0,))
    with pytest.raises(ValueError, match=r"spacing: expected 1 to targets\.ndim = 1 values, got 2"):
        edt_squared(torch.zeros(3, dtype=torch.bool), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"f: expected a floating-point tensor \[lines, n\], got torch\.float32 "
                                         r"of shape \[3\]"):
        min_plus_pass(torch.zeros(3), 1.0)
    assert spacing_scale((0.7, 3.0)) == 4.0 and spacing_scale((1e-30,)) == 2.0 ** round(np.log2(1e-30))


def test_internal_helpers_take_torch_too():
    """Oracle: scipy; the per-volume helpers the weight maps call accept backend 'torch' (on the CPU)."""
    mask = _blobs((9, 8, 7), seed=13, density=0.08)
    values = mask.astype(np.int64) + (np.arange(7) > 3)
    spacing = (0.6, 1.0, 1.9)
    np.testing.assert_allclose(dist.distance_inside(mask, spacing, "torch"),
                               ndi.distance_transform_edt(mask, sampling=spacing), rtol=1e-6)
    np.testing.assert_allclose(dist.distance_both_sides(mask, spacing, "torch"),
                               _scipy_map(mask, spacing, "interface"), rtol=1e-6)
    np.testing.assert_allclose(dist.distance_to_other_value(values, spacing, "torch"),
                               dist.distance_to_other_value(values, spacing, "scipy"), rtol=1e-6)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", list(FUNCTIONS))
def test_cuda_matches_scipy_and_stays_on_device(kind):
    """Oracle: scipy per volume; a CUDA tensor gives a CUDA map under 'torch' and under 'auto'."""
    masks = np.stack([_blobs((20, 24, 18), seed=s, density=0.03) for s in range(3)])
    masks[2] = False
    spacing = (2.0, 0.8, 0.8)
    t = torch.as_tensor(masks, device="cuda")
    expected = _scipy_batch(masks, spacing, kind)
    for backend in ("torch", "auto"):
        out = FUNCTIONS[kind](t, spacing=spacing, backend=backend, spatial_dims=3)
        assert out.device.type == "cuda" and out.dtype == torch.float32
        np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-6)


@pytest.mark.cuda
def test_cuda_large_volume_in_bounded_tiles():
    """Oracle: scipy; a 96^3 anisotropic volume (lines * n^2 far above one tile) on CUDA."""
    mask = _blobs((96, 96, 96), seed=12, density=0.001)
    spacing = (0.5, 0.9, 2.5)
    out = signed_distance(torch.as_tensor(mask, device="cuda"), spacing=spacing)
    np.testing.assert_allclose(out.cpu().numpy(), _scipy_map(mask, spacing, "signed"), rtol=1e-6)


def _bounded(d: np.ndarray, bound: float) -> np.ndarray:
    """The oracle's map with every distance above ``bound`` reported as +-inf."""
    return np.where(np.abs(d) > bound, np.copysign(np.inf, d), d)


@pytest.mark.parametrize("kind", list(FUNCTIONS))
@pytest.mark.parametrize(("shape", "spacing"), CASES)
@pytest.mark.parametrize("backend", ["torch", "scipy", "edt"])
def test_max_distance_is_the_full_map_beyond_the_bound_set_to_inf(shape, spacing, kind, backend):
    if backend == "edt" and len(shape) > 3:
        pytest.skip("edt supports 1 to 3 dims")
    mask = _blobs(shape, seed=3 * len(shape), density=0.02)
    bound = 2.37  # far from any lattice distance of these spacings: the comparison is not at a rounding edge
    ours = FUNCTIONS[kind](mask, spacing=spacing, backend=backend, max_distance=bound)
    expected = _bounded(_scipy_map(mask, spacing, kind), bound)
    np.testing.assert_allclose(ours, expected.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("band", [0, 1, 3, 6])
def test_banded_pass_is_the_full_pass_within_the_band(band):
    g = torch.Generator().manual_seed(band)
    f = torch.where(torch.rand(7, 20, generator=g) < 0.2, 0.0, float("inf")).double()
    f = min_plus_pass(f, 0.7)  # a realistic input: squared distances along the line, inf where unknown
    step = 1.3
    banded, full = min_plus_pass(f, step, band=band), min_plus_pass(f, step)
    within = full <= (step * band) ** 2 + 1e-12
    torch.testing.assert_close(banded[within], full[within])
    assert (banded >= full).all()  # never below the exact minimum, which it only misses beyond the band


@pytest.mark.parametrize("bound", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_bad_max_distance_names_it(bound):
    with pytest.raises((ValueError, TypeError), match="max_distance"):
        distance_to_foreground(np.ones((3, 3), dtype=bool), max_distance=bound)
