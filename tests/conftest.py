"""Shared fixtures: seeded RNGs, temp NIfTI writers, and a CUDA marker that skips cleanly."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import voxweight


def _threads_per_worker() -> int | None:
    """Cores per xdist worker: torch's default (every core) in each worker oversubscribes the machine."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    return max(1, (os.cpu_count() or 1) // int(workers)) if workers else None


def pytest_configure(config):
    threads = _threads_per_worker()
    if threads is not None:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # for the processes tests start (kernels, workers)


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
