"""Alias of the flat layout: ``voxweight.weights`` keeps working; the code lives in :mod:`voxweight.maps`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.maps`, and new code goes there too.
"""

from voxweight.maps import BOUNDARY_MODES, boundary_weights, class_balance_weights

__all__ = ["BOUNDARY_MODES", "boundary_weights", "class_balance_weights"]
