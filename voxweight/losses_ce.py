"""Alias of the flat layout: ``voxweight.losses_ce`` keeps working; the code lives in :mod:`voxweight.losses`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.losses`, and new code goes there too.
"""

from voxweight.losses import VoxelWeightedCE, voxel_weighted_ce

__all__ = ["VoxelWeightedCE", "voxel_weighted_ce"]
