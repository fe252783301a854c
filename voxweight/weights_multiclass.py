"""Alias of the flat layout: ``voxweight.weights_multiclass`` keeps working; the code lives in :mod:`voxweight.maps`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.maps`, and new code goes there too.
"""

from voxweight.maps import MULTICLASS_BALANCE_MODES, multiclass_balance_weights

__all__ = ["MULTICLASS_BALANCE_MODES", "multiclass_balance_weights"]
