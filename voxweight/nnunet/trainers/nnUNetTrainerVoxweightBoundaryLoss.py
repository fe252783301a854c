"""nnU-Net trainer: Dice + CE + Kervadec's boundary loss, the two weighted per epoch by BoundaryLossSchedule.

The schedule's epoch is the trainer's ``current_epoch`` at the start of each training epoch (so a resumed
run continues the schedule). Everything else is nnU-Net's.
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from voxweight.nnunet.build import boundary_loss_loss


class nnUNetTrainerVoxweightBoundaryLoss(nnUNetTrainer):
    """nnU-Net's trainer with ``a_e (Dice + CE) + b_e BoundaryLoss`` at every scale (Kervadec et al. 2019).

    Attributes:
        voxweight_schedule_start, voxweight_schedule_step, voxweight_schedule_floor, voxweight_schedule_mode:
            the :class:`voxweight.losses.BoundaryLossSchedule` (default: ``a`` from 1 down 0.01 per epoch to
            0.01, ``b = 1 - a``).
        voxweight_sigma_unit: ``"mm"`` (signed distances in the preprocessed spacing) or ``"voxel"``.
        voxweight_backend: where the distances are computed (``"auto"``: torch on the GPU).
    """

    voxweight_schedule_start = 1.0
    voxweight_schedule_step = 0.01
    voxweight_schedule_floor = 0.01
    voxweight_schedule_mode = "rebalance"
    voxweight_sigma_unit = "mm"
    voxweight_backend = "auto"

    def _build_loss(self):
        """nnU-Net's loss with the boundary term (see :func:`voxweight.nnunet.build.boundary_loss_loss`)."""
        return boundary_loss_loss(self, super()._build_loss())

    def on_train_epoch_start(self):
        """Move the schedule to this epoch, then nnU-Net's epoch start."""
        self.loss.schedule.epoch = self.current_epoch
        super().on_train_epoch_start()
