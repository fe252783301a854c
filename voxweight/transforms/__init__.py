"""MONAI transforms that build voxel weight maps from label volumes."""
