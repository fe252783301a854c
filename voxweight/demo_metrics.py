"""Alias of the flat layout: ``voxweight.demo_metrics`` keeps working; the code lives in :mod:`voxweight.demo`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.demo`, and new code goes there too.
"""

from voxweight.demo import boundary_region, expected_calibration_error, overlap_scores

__all__ = ["boundary_region", "expected_calibration_error", "overlap_scores"]
