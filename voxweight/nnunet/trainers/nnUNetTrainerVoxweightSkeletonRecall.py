"""nnU-Net trainer: Dice + CE + Skeleton Recall (Kirchhoff et al., ECCV 2024) with voxweight's loss and skeletons.

The tubed skeleton is built in the train step (inside the loss) from the full-resolution target, on the host
(scikit-image), and resampled to each deep-supervision scale as nnU-Net resamples targets. Region-based
datasets raise when the trainer initialises. Everything else is nnU-Net's.
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from voxweight.nnunet.build import skeleton_recall_loss


class nnUNetTrainerVoxweightSkeletonRecall(nnUNetTrainer):
    """nnU-Net's trainer with ``Dice + CE + voxweight_weight_srec * SkeletonRecall`` at every scale.

    Attributes:
        voxweight_weight_srec: the recall term's weight (the reference's 1).
        voxweight_tube_radius: dilations of the skeleton into a tube (the reference's 2).
        voxweight_sigma_unit: unused by the recall (kept for the spacing of every voxweight trainer).
    """

    voxweight_weight_srec = 1.0
    voxweight_tube_radius = 2
    voxweight_sigma_unit = "mm"

    def _build_loss(self):
        """nnU-Net's loss plus the recall term (see :func:`voxweight.nnunet.build.skeleton_recall_loss`)."""
        return skeleton_recall_loss(self, super()._build_loss())
