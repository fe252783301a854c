"""Where people train with MONAI: engines whose loss gets the pipeline's voxel weight maps.

``WeightedSupervisedTrainer`` is ``monai.engines.SupervisedTrainer`` with one change: the loss is called
``loss(pred, label, weight=batch["label_weight"])`` (and ``mask=``, or any keyword mapped to a batch key),
so the maps written by ``transforms/train_boundary.yaml`` reach voxweight's losses. The shipped bundle
``transforms/bundle_train_boundary.yaml`` trains with it (``python -m monai.bundle run --config_file ...``).
Import this module explicitly (``import voxweight.engines``): it imports MONAI and pytorch-ignite, which
``import voxweight`` does not.
"""

from voxweight.engines.supervised import WeightedSupervisedTrainer, batch_loss_kwargs

__all__ = ["WeightedSupervisedTrainer", "batch_loss_kwargs"]
