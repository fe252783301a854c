"""Shared fixtures: seeded RNGs, temp NIfTI writers, and a CUDA marker that skips cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import voxweight


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_value_checks():
    mode = voxweight.get_value_checks()
    yield
    voxweight.set_value_checks(mode)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def devices() -> list[torch.device]:
    out = [torch.device("cpu")]
    if torch.cuda.is_available():
        out.append(torch.device("cuda"))
    return out
