"""Alias of the flat layout: ``voxweight.calibration`` keeps working; the code lives in :mod:`voxweight.losses`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.losses`, and new code goes there too.
"""

from voxweight.losses import debias_logits

__all__ = ["debias_logits"]
