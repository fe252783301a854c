"""Weight maps from label volumes, numpy or torch, no MONAI: class balance, boundary emphasis, distances.

Every map takes a label ``[..., *spatial]`` (the last ``spatial_dims`` axes are spatial) and returns a
float32 map of its shape and type. :mod:`~voxweight.maps.balance` rebalances classes,
:mod:`~voxweight.maps.boundary` emphasises borders (bonuses in :mod:`~voxweight.maps.bonus`),
:mod:`~voxweight.maps.distance` measures distances in physical units, :mod:`~voxweight.maps.labels`
checks and converts labels. :mod:`voxweight.transforms` wraps these functions for MONAI.
"""

from voxweight.maps.balance import (
    BALANCE_MODES,
    MULTICLASS_BALANCE_MODES,
    balance_factors,
    balance_map,
    class_balance_weights,
    multiclass_balance_weights,
)
from voxweight.maps.boundary import BOUNDARY_BACKENDS, BOUNDARY_MODES, boundary_weights
from voxweight.maps.components import connected_components
from voxweight.maps.distance import DISTANCE_BACKENDS, distance_to_foreground, distance_to_interface, signed_distance
from voxweight.maps.signed import class_signed_distance
from voxweight.maps.skeleton import tubed_skeleton

__all__ = [
    "BALANCE_MODES",
    "BOUNDARY_BACKENDS",
    "BOUNDARY_MODES",
    "DISTANCE_BACKENDS",
    "MULTICLASS_BALANCE_MODES",
    "balance_factors",
    "balance_map",
    "boundary_weights",
    "class_balance_weights",
    "class_signed_distance",
    "connected_components",
    "distance_to_foreground",
    "distance_to_interface",
    "multiclass_balance_weights",
    "signed_distance",
    "tubed_skeleton",
]
