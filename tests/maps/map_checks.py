"""Helpers shared by the map and transform tests."""

from __future__ import annotations

import contextlib

import pytest
import torch

import voxweight.maps.boundary as boundary_module
import voxweight.maps.components as components_module
import voxweight.maps.labels as labels_module


def warns_few_objects(active: bool = True):
    """``pytest.warns`` for the "unet" map's fewer-than-two-objects UserWarning (a null context if not active)."""
    return pytest.warns(UserWarning, match=r"mode='unet' found [01] objects?;") if active else contextlib.nullcontext()


def refuse_host_copies(monkeypatch) -> None:
    """Make every way a label could reach the host raise: ``host_array``, ``Tensor.numpy`` and ``__array__``.

    CPU tensors then stand in for a device's: ``HOST_DEVICES`` is emptied, so connected components come from
    the torch propagation as on a GPU (``"auto"`` labels a CPU tensor with scipy, which needs no copy there).
    """
    def refuse(*args, **kwargs):
        raise AssertionError("host copy")

    for target in (labels_module, boundary_module):
        monkeypatch.setattr(target, "host_array", refuse)
    monkeypatch.setattr(torch.Tensor, "numpy", refuse)
    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    monkeypatch.setattr(components_module, "HOST_DEVICES", ())
