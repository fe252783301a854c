"""nnU-Net trainer: Dice + CE with the CE weighted per voxel by a boundary map (voxweight.maps.boundary_weights).

Everything but the loss is nnU-Net's (network, data, deep supervision, ``batch_dice``, DDP). Subclass and
override the ``voxweight_*`` attributes to change the map.
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from voxweight.nnunet.build import boundary_weighted_loss


class nnUNetTrainerVoxweightBoundary(nnUNetTrainer):
    """nnU-Net's trainer with ``Dice + CE^w``, ``w = boundary_weights(target)`` at every deep-supervision scale.

    Attributes:
        voxweight_mode: ``"unet"`` (Ronneberger's separation map) or ``"distance"`` (an interface band).
        voxweight_w0: the bonus height.
        voxweight_sigma: the bonus width, in ``voxweight_sigma_unit``.
        voxweight_sigma_unit: ``"mm"`` (the configuration's preprocessed spacing) or ``"voxel"``.
        voxweight_ce_reduction: ``"mean"`` (nnU-Net's: divide by the voxel count) or ``"weighted_mean"``.
        voxweight_backend: where the map is computed (``"auto"``: torch on the GPU, edt on the CPU).
    """

    voxweight_mode = "unet"
    voxweight_w0 = 10.0
    voxweight_sigma = 5.0
    voxweight_sigma_unit = "mm"
    voxweight_ce_reduction = "mean"
    voxweight_backend = "auto"

    def _build_loss(self):
        """nnU-Net's loss with its CE reweighted (see :func:`voxweight.nnunet.build.boundary_weighted_loss`)."""
        return boundary_weighted_loss(self, super()._build_loss())
