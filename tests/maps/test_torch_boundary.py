"""boundary_weights(backend="torch"): the numpy path (backends "edt" and "scipy") is the oracle, to float32
tolerance (rtol 1e-5, atol 1e-6 w0), on binary, instance and class-index labels in 1-4 dims, anisotropic
spacing, batched leading dims, degenerate labels (same warnings), tiny and large sigma; plus a hypothesis
property, a no-host-copy check (every host conversion patched to raise) and the backend dispatch."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import voxweight.maps.boundary as boundary_module
from tests.maps.map_checks import refuse_host_copies
from voxweight.maps import boundary_weights
from voxweight.maps.torch_bonus import BAND_SIGMAS

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
W0 = 10.0


def _blobs(shape, seed, density=0.04) -> np.ndarray:
    rng = np.random.default_rng(seed)
    seeds = rng.random(shape) < (density if len(shape) > 2 else 4 * density)
    return ndi.binary_dilation(seeds).astype(np.uint8)


def _labels(kind: str, shape, seed) -> tuple[np.ndarray, dict]:
    """A label of ``kind`` and the keywords it needs: binary, instances (split blobs), class indices."""
    fg = _blobs(shape, seed)
    rng = np.random.default_rng(seed + 100)
    if kind == "binary":
        return fg, {}
    if kind == "instances":  # the components, some split in two by the parity of the last coordinate
        objects = ndi.label(fg.reshape(-1, *shape[-2:]) if len(shape) > 2 else fg)[0].reshape(shape)
        split = (np.arange(shape[-1]) % 2) * (rng.random(shape) < 0.5)
        return fg, {"instances": (objects * 2 + split * (objects > 0)).astype(np.int64)}
    return (fg * rng.integers(1, 4, shape)).astype(np.int64), {"multiclass": True}


def both(label: np.ndarray, oracle_backend: str = "edt", **kw) -> tuple[np.ndarray, torch.Tensor]:
    """The numpy path's map and the torch path's, without warnings (they are tested separately)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = boundary_weights(label, backend=oracle_backend, **kw)
        inst = kw.pop("instances", None)
        inst = None if inst is None else torch.from_numpy(inst)
        got = boundary_weights(torch.from_numpy(label), backend="torch", instances=inst, **kw)
    return expected, got


def assert_close(got: torch.Tensor, expected: np.ndarray, w0: float = W0) -> None:
    assert got.dtype == torch.float32 and tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6 * w0)


CASES = [((40,), (0.7,), 1), ((3, 37), (1.3,), 1), ((26, 23), (1.0, 1.0), 2), ((2, 21, 19), (0.6, 1.9), 2),
         ((12, 11, 10), (1.5, 0.7, 2.0), 3), ((2, 1, 9, 10, 11), (1.0, 2.5, 0.8), 3)]


KINDS = [("unet", "binary"), ("unet", "instances"), ("unet", "multiclass"), ("distance", "binary"),
         ("distance", "multiclass")]  # instances are for mode="unet" only


@pytest.mark.parametrize("sigma", [0.7, 3.0, 40.0, 1e9])
@pytest.mark.parametrize(("shape", "spacing", "dims"), CASES)
@pytest.mark.parametrize(("mode", "kind"), KINDS)
def test_torch_equals_edt_path(mode, kind, shape, spacing, dims, sigma):
    """Oracle: the numpy path with edt; batched leading dims, anisotropic spacing, 1-3 spatial dims."""
    label, kw = _labels(kind, shape, seed=len(shape) + int(sigma))
    expected, got = both(label, mode=mode, w0=W0, sigma=sigma, spacing=spacing, spatial_dims=dims, **kw)
    assert_close(got, expected)
    assert (expected > 1).any()  # the case is not trivially all ones


@pytest.mark.parametrize("mode", ["unet", "distance"])
def test_torch_equals_scipy_path_in_4d_and_3d(mode):
    """Oracle: the scipy backend (4 spatial dims: edt has no 4-D)."""
    for shape, spacing in (((7, 8, 6, 7), (1.0, 0.8, 1.2, 1.5)), ((2, 10, 9, 8), (1.0, 1.0, 2.0))):
        label = _blobs(shape, seed=9, density=0.05)
        expected, got = both(label, "scipy", mode=mode, w0=W0, sigma=2.0, spacing=spacing, spatial_dims=len(spacing))
        assert_close(got, expected)


def test_band_covers_every_bonus_above_float32_resolution():
    """The band: beyond BAND_SIGMAS the bonus is 1e-7 w0 (the numpy path keeps longer distances in its boxes)."""
    assert math.exp(-(BAND_SIGMAS**2) / 2) == pytest.approx(1e-7)
    assert BAND_SIGMAS > 4.0


def _two_cubes(n=14) -> np.ndarray:
    lab = np.zeros((n, n, n), dtype=np.uint8)
    lab[2:5, 2:5, 2:5] = 1
    lab[8:12, 7:11, 6:9] = 1
    return lab


def _one_voxel() -> np.ndarray:
    lab = np.zeros((6, 7, 5), dtype=np.uint8)
    lab[2, 3, 1] = 1
    return lab


DEGENERATE = {"empty": np.zeros((6, 7, 5), np.uint8), "full": np.ones((6, 7, 5), np.uint8), "one voxel": _one_voxel(),
              "one object": np.pad(np.ones((3, 3, 3), np.uint8), 2), "zero-size": np.zeros((2, 0, 5, 5), np.uint8)}


def _record(fn) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in record if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("mode", ["unet", "distance"])
@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_labels_give_the_same_map_and_warnings(name, mode):
    """Oracle: the edt path's map and its exact warning messages (few objects for "unet")."""
    label = DEGENERATE[name]
    kw = {"mode": mode, "w0": W0, "sigma": 2.0, "spatial_dims": 3}
    expected, want = _record(lambda: boundary_weights(label, backend="edt", **kw))
    got, have = _record(lambda: boundary_weights(torch.from_numpy(label), backend="torch", **kw))
    assert_close(got, expected)
    assert have == want
    trivial = mode == "unet" or name in ("empty", "full", "zero-size")  # nothing to separate, or no interface
    assert bool((got == 1).all()) == trivial


def test_batched_few_objects_warning_names_the_same_counts():
    """Oracle: the edt path's message (object counts per volume) on a batch with 0, 1 and 2 objects."""
    label = np.stack([np.zeros((14, 14, 14), np.uint8), np.pad(np.ones((3, 3, 3), np.uint8), (2, 9)), _two_cubes()])
    expected, want = _record(lambda: boundary_weights(label, w0=W0, sigma=2.0, backend="edt"))
    got, have = _record(lambda: boundary_weights(torch.from_numpy(label), w0=W0, sigma=2.0, backend="torch"))
    assert_close(got, expected)
    assert have == want and "object counts: 0, 1" in have[0]


@pytest.mark.parametrize("sigma", [1e-6, 0.1])
def test_narrow_sigma_warns_alike(sigma):
    label = _two_cubes()
    expected, want = _record(lambda: boundary_weights(label, sigma=sigma, spacing=2.0, backend="edt"))
    got, have = _record(lambda: boundary_weights(torch.from_numpy(label), sigma=sigma, spacing=2.0, backend="torch"))
    assert_close(got, expected)
    assert have == want and len(have) == 1 and have[0].startswith("sigma:")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.bool, torch.int32])
def test_label_dtypes(dtype):
    """Oracle: the edt path on the same values (float16/bfloat16 0/1 labels, bool, int)."""
    label = _two_cubes()
    expected = boundary_weights(label, sigma=2.0, backend="edt")
    assert_close(boundary_weights(torch.from_numpy(label).to(dtype), sigma=2.0, backend="torch"), expected)


def test_numpy_label_on_torch_returns_numpy_and_auto_keeps_cpu_tensors_on_the_host(monkeypatch):
    """backend="torch" takes ndarrays too; "auto" on a CPU tensor, "edt" and "scipy" never call the torch path."""
    label = _two_cubes()
    expected = boundary_weights(label, sigma=2.0, backend="edt")
    out = boundary_weights(label, sigma=2.0, backend="torch")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6 * W0)
    read_only = label.copy()
    read_only.flags.writeable = False  # torch cannot wrap it: copied, no warning
    _, messages = _record(lambda: boundary_weights(read_only, sigma=2.0, backend="torch"))
    assert messages == []

    def no_torch(*args, **kwargs):
        raise AssertionError("the torch path ran")

    monkeypatch.setattr(boundary_module, "_torch_maps", no_torch)
    for backend in ("auto", "edt", "scipy"):
        out = boundary_weights(torch.from_numpy(label), sigma=2.0, backend=backend)
        assert isinstance(out, torch.Tensor)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6 * W0)


def test_unknown_backend_and_edt_in_4d_raise():
    with pytest.raises(ValueError, match=r"backend: expected one of 'auto', 'edt', 'scipy', 'torch', got 'cuda'"):
        boundary_weights(_two_cubes(), backend="cuda")
    with pytest.raises(ValueError, match=r"backend: expected 'auto' or 'scipy' for 4 dims"):
        boundary_weights(np.zeros((3, 3, 3, 3)), spatial_dims=4, backend="edt")


BAD = [  # label, keywords, error, message: the same on both paths
    (np.array([0, 1, 2, 1]), {}, ValueError, "got 1 voxels with other values, e.g. 2"),
    (np.array([0.0, 0.5, np.nan]), {}, ValueError, "expected a binary label"),
    (np.array([0, -1, 2]), {"multiclass": True}, ValueError, "got minimum -1"),
    (np.array([0.0, 1.0]), {"multiclass": True}, TypeError, "expected integer class indices"),
    (np.array([0, 1, 1]), {"instances": np.array([0, 1, 0])}, ValueError, "got 1 voxels that disagree"),
    (np.array([0, 1, 1]), {"instances": np.array([0, -1, 2])}, ValueError, "got minimum -1"),
    (np.array([0, 1, 1]), {"instances": np.array([0.0, 1.0, 1.0])}, TypeError, "expected integer instance ids"),
    (np.array([0, 1, 1]), {"instances": np.array([0, 1])}, ValueError, r"expected shape \[3\]"),
    (np.array([0, 1, 1]), {"instances": np.array([0, 1, 1]), "mode": "distance"}, ValueError, "expected None"),
    (np.array([0, -1, 1]), {"instances": np.array([0, 1, 1])}, ValueError, "label: expected values >= 0"),
]


@pytest.mark.parametrize(("label", "kw", "error", "message"), BAD)
def test_bad_labels_raise_the_same_errors(label, kw, error, message):
    """Oracle: the numpy path's error; the torch path checks on the tensor (instances given as tensors too)."""
    with pytest.raises(error, match=message):
        boundary_weights(label, spatial_dims=1, backend="edt", **kw)
    tensor_kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    with pytest.raises(error, match=message):
        boundary_weights(torch.from_numpy(label), spatial_dims=1, backend="torch", **tensor_kw)


def test_instances_shared_by_leading_dims_and_sparse_ids():
    """Oracle: the edt path; [*spatial] instances shared by two channels, ids up to 1e15 (renumbered)."""
    fg = np.zeros((16, 15), dtype=np.uint8)
    fg[2:6, 2:6] = fg[2:6, 7:10] = fg[10:14, 3:12] = 1
    inst = np.zeros(fg.shape, dtype=np.int64)
    inst[2:6, 2:6], inst[2:6, 7:10], inst[10:14, 3:12] = 10**15, 7, 10**15 + 1
    label = np.stack([fg, fg])
    expected, got = both(label, w0=W0, sigma=2.0, spatial_dims=2, instances=inst)
    assert_close(got, expected)
    assert (got > 1.5).any()


def test_torch_path_makes_no_host_copy(monkeypatch):
    """Every host conversion raises while the torch path runs (host_array, Tensor.numpy, __array__)."""
    label, inst = _two_cubes(), ndi.label(_two_cubes())[0].astype(np.int64)
    classes = label.astype(np.int64) * np.arange(1, 15).reshape(1, 1, 14) % 3
    tensors = {"binary": torch.from_numpy(label), "instances": torch.from_numpy(inst),
               "classes": torch.from_numpy(classes)}
    expected = {
        "unet": boundary_weights(label, sigma=2.0), "distance": boundary_weights(label, mode="distance", sigma=2.0),
        "instances": boundary_weights(label, sigma=2.0, instances=inst),
        "multiclass": boundary_weights(classes, sigma=2.0, multiclass=True),
        "multiclass distance": boundary_weights(classes, mode="distance", sigma=2.0, multiclass=True),
    }

    refuse_host_copies(monkeypatch)
    got = {
        "unet": boundary_weights(tensors["binary"], sigma=2.0, backend="torch"),
        "distance": boundary_weights(tensors["binary"], mode="distance", sigma=2.0, backend="torch"),
        "instances": boundary_weights(tensors["binary"], sigma=2.0, instances=tensors["instances"], backend="torch"),
        "multiclass": boundary_weights(tensors["classes"], sigma=2.0, multiclass=True, backend="torch"),
        "multiclass distance": boundary_weights(tensors["classes"], mode="distance", sigma=2.0, multiclass=True,
                                                backend="torch"),
    }
    monkeypatch.undo()
    for name, out in got.items():
        assert_close(out, expected[name])


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 2), st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 2)),
       st.sampled_from(["unet", "distance"]), st.booleans(), st.floats(0.3, 6.0),
       st.tuples(st.floats(0.5, 2.0), st.floats(0.5, 2.0)))
def test_property_torch_equals_edt(label, mode, multiclass, sigma, spacing):
    """Property: any small binary or class-index label, either mode, any sigma and spacing: the edt path's map."""
    label = label if multiclass else (label > 0).astype(np.uint8)
    expected, got = both(label, mode=mode, w0=W0, sigma=sigma, spacing=spacing, spatial_dims=2,
                         multiclass=multiclass)
    assert_close(got, expected)


@CUDA
@pytest.mark.parametrize(("mode", "kind"), KINDS)
def test_cuda_equals_edt_path_and_stays_on_device(mode, kind):
    label, kw = _labels(kind, (2, 20, 18, 16), seed=4)
    expected = boundary_weights(label, mode=mode, sigma=3.0, spacing=(1.0, 0.7, 1.6), spatial_dims=3, **kw)
    cuda_kw = {k: torch.from_numpy(v).cuda() if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    got = boundary_weights(torch.from_numpy(label).cuda(), mode=mode, sigma=3.0, spacing=(1.0, 0.7, 1.6),
                           spatial_dims=3, **cuda_kw)  # "auto": the torch path on the GPU
    assert got.device.type == "cuda"
    assert_close(got.cpu(), expected)
