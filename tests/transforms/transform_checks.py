"""Helpers shared by the transform tests: build a label of each kind, check a transform against its oracle."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

PIXDIM = (0.8, 1.2, 2.0)


def as_kind(kind: str, lab: np.ndarray):
    """The label as an ndarray, a Tensor, or a MetaTensor with an anisotropic affine (PIXDIM)."""
    if kind == "ndarray":
        return lab.copy()
    if kind == "tensor":
        return torch.as_tensor(lab.copy())
    affine = torch.diag(torch.tensor([*PIXDIM, 1.0], dtype=torch.float64))
    return MetaTensor(torch.as_tensor(lab.copy()), affine=affine, meta={"filename_or_obj": "lab.nii.gz"})


def check_against_oracle(transform: Callable, oracle: Callable, label: np.ndarray, kind: str) -> None:
    """Same type, float32, same shape, label untouched, values equal to the pure function (spacing = pixdim)."""
    lab = as_kind(kind, label)
    before = np.asarray(lab).copy()
    out = transform(lab)
    assert type(out) is type(lab)
    assert out.dtype in (np.float32, torch.float32)
    assert tuple(out.shape) == tuple(lab.shape)
    np.testing.assert_array_equal(np.asarray(lab), before)  # label not mutated
    spacing = PIXDIM if kind == "metatensor" else None
    np.testing.assert_allclose(np.asarray(out), oracle(label, spacing), rtol=1e-6, atol=1e-6)
    if kind == "metatensor":
        torch.testing.assert_close(out.affine, lab.affine)
        assert out.meta["filename_or_obj"] == "lab.nii.gz"
        assert out.pixdim.tolist() == pytest.approx(PIXDIM)


def check_pickle_round_trip(transform: Callable, label: np.ndarray) -> None:
    """A pickled copy (as DataLoader workers get it) gives the same output on a MetaTensor label."""
    import pickle

    copy = pickle.loads(pickle.dumps(transform))
    data = {"label": as_kind("metatensor", label)} if hasattr(transform, "keys") else as_kind("metatensor", label)
    a, b = transform(data), copy(data)
    a, b = (a["label_weight"], b["label_weight"]) if isinstance(a, dict) else (a, b)
    torch.testing.assert_close(a.as_tensor(), b.as_tensor())
