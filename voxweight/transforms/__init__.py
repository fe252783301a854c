"""MONAI transforms that build voxel weight maps from label volumes.

Array transforms take a channel-first label ``[C, *spatial]`` and return a weight map of the same shape;
dictionary transforms write the map of ``d[key]`` to ``d[key + "_weight"]``. ``SignedDistance(d)`` gives the
boundary loss's signed distance maps (``d[key + "_sdm"]``), ``TubedSkeleton(d)`` Skeleton Recall's tubed
skeletons (``d[key + "_skeleton"]``). Import this module
explicitly (``import voxweight.transforms``): it imports MONAI, which ``import voxweight`` does not.
"""

from voxweight.transforms.array import BoundaryWeight, ClassBalanceWeight
from voxweight.transforms.dictionary import (
    BoundaryWeightD,
    BoundaryWeightd,
    BoundaryWeightDict,
    ClassBalanceWeightD,
    ClassBalanceWeightd,
    ClassBalanceWeightDict,
)
from voxweight.transforms.signed import SignedDistance, SignedDistanceD, SignedDistanced, SignedDistanceDict
from voxweight.transforms.skeleton import TubedSkeleton, TubedSkeletonD, TubedSkeletond, TubedSkeletonDict

__all__ = [
    "BoundaryWeight",
    "BoundaryWeightD",
    "BoundaryWeightDict",
    "BoundaryWeightd",
    "ClassBalanceWeight",
    "ClassBalanceWeightD",
    "ClassBalanceWeightDict",
    "ClassBalanceWeightd",
    "SignedDistance",
    "SignedDistanceD",
    "SignedDistanceDict",
    "SignedDistanced",
    "TubedSkeleton",
    "TubedSkeletonD",
    "TubedSkeletonDict",
    "TubedSkeletond",
]
