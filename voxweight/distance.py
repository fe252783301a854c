"""Alias of the flat layout: ``voxweight.distance`` keeps working; the code lives in :mod:`voxweight.maps`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.maps`, and new code goes there too.
"""

from voxweight.maps.distance import DISTANCE_BACKENDS, distance_to_foreground, distance_to_interface, signed_distance

__all__ = ["DISTANCE_BACKENDS", "distance_to_foreground", "distance_to_interface", "signed_distance"]
