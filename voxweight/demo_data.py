"""Alias of the flat layout: ``voxweight.demo_data`` keeps working; the code lives in :mod:`voxweight.demo`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.demo`, and new code goes there too.
"""

from voxweight.demo import synthetic_volume, vessel_tree, write_synthetic_dataset, write_vessel_dataset

__all__ = ["synthetic_volume", "vessel_tree", "write_synthetic_dataset", "write_vessel_dataset"]
