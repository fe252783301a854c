"""Helpers shared by the map and transform tests."""

from __future__ import annotations

import contextlib

import pytest


def warns_few_objects(active: bool = True):
    """``pytest.warns`` for the "unet" map's fewer-than-two-objects UserWarning (a null context if not active)."""
    return pytest.warns(UserWarning, match=r"mode='unet' found [01] objects?;") if active else contextlib.nullcontext()
