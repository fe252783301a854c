"""Weight maps from label volumes, numpy or torch, no MONAI: class balance, boundary emphasis, distances.

Every map takes a label ``[..., *spatial]`` (the last ``spatial_dims`` axes are spatial) and returns a
float32 map of its shape and type. :mod:`voxweight.transforms` wraps these functions for MONAI.
"""

from voxweight.maps.boundary import BOUNDARY_MODES, boundary_weights, class_balance_weights
from voxweight.maps.distance import DISTANCE_BACKENDS, distance_to_foreground, distance_to_interface, signed_distance
from voxweight.maps.multiclass import MULTICLASS_BALANCE_MODES, multiclass_balance_weights

__all__ = [
    "BOUNDARY_MODES",
    "DISTANCE_BACKENDS",
    "MULTICLASS_BALANCE_MODES",
    "boundary_weights",
    "class_balance_weights",
    "distance_to_foreground",
    "distance_to_interface",
    "multiclass_balance_weights",
    "signed_distance",
]
