"""A MONAI ``SupervisedTrainer`` whose loss also gets the batch's weight map: ``WeightedSupervisedTrainer``.

MONAI's trainer calls ``loss_function(pred, label)``, so the ``label_weight`` that a voxweight pipeline
writes never reaches the loss. Why a trainer subclass, and not the two other hooks MONAI offers:

- ``prepare_batch``: MONAI 1.6's ``SupervisedTrainer._iteration`` unpacks a 4-tuple from it as
  ``inputs, targets, args, kwargs`` and hands ``args`` / ``kwargs`` to the inferer, that is to the
  *network* (``inferer(inputs, network, *args, **kwargs)``), not to the loss. A weight map there would
  be fed to the U-Net.
- ``iteration_update``: a replacement iteration would have to re-implement MONAI's (events, AMP with the
  grad scaler, gradient accumulation, ``optim_set_to_none``, ``torch.compile`` meta handling), and drift
  from it with every MONAI release.

So :class:`WeightedSupervisedTrainer` keeps MONAI's own iteration and changes one thing: for the length
of each iteration, ``engine.loss_function`` is the user's loss with the batch's maps bound as keywords
(``functools.partial(loss, weight=batch["label_weight"])``), moved to the trainer's device like the
image and label. Events, AMP, ``decollate``, metrics and handlers are MONAI's, untouched. It is built
from Python or from a bundle config (``_target_: voxweight.engines.WeightedSupervisedTrainer``, see
``transforms/bundle_train_boundary.yaml``).

Requires ``pytorch-ignite`` (MONAI's engines run on it).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.engines import SupervisedTrainer

from voxweight._validate import describe, plain_tensor

__all__ = ["WeightedSupervisedTrainer", "batch_loss_kwargs"]


def batch_loss_kwargs(batchdata: Any, keys: Mapping[str, str], *, device: str | torch.device | None = None,
                      non_blocking: bool = False,
                      to_kwargs: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """The loss's keyword tensors from a dict batch, on ``device``, as plain tensors.

    ``{name: batchdata[key] for name, key in keys.items()}``, each moved with
    ``Tensor.to(device=device, non_blocking=non_blocking, **to_kwargs)`` (as MONAI's
    ``default_prepare_batch`` moves the image and label) and turned from a ``MetaTensor`` into a plain
    ``torch.Tensor`` (the losses take plain tensors; the data is shared, not copied).

    Args:
        batchdata: a collated dict batch (``{"image": ..., "label": ..., "label_weight": ...}``).
        keys: loss keyword -> batch key, e.g. ``{"weight": "label_weight"}``.
        device: where the tensors go (the trainer's ``state.device``); ``None`` leaves them where they are.
        non_blocking: passed to ``Tensor.to``.
        to_kwargs: further ``Tensor.to`` arguments (the trainer's ``to_kwargs``).

    Returns:
        ``{keyword: tensor}``, ready for ``loss(pred, label, **kwargs)``.

    Raises:
        TypeError: if ``batchdata`` is not a mapping, or a value is not a tensor.
        KeyError: naming the key, if the batch lacks it (and listing the keys it has).

    Shape:
        Each tensor keeps its batch shape, e.g. ``label_weight`` ``[B, 1, *roi_size]``.

    Example:
        >>> from monai.data import MetaTensor
        >>> batch = {"image": torch.zeros(2, 1, 4, 4, 4), "label_weight": MetaTensor(torch.ones(2, 1, 4, 4, 4))}
        >>> out = batch_loss_kwargs(batch, {"weight": "label_weight"}, device="cpu")
        >>> type(out["weight"]).__name__, list(out["weight"].shape)
        ('Tensor', [2, 1, 4, 4, 4])
        >>> batch_loss_kwargs({"image": torch.zeros(1)}, {"weight": "label_weight"})
        Traceback (most recent call last):
        ...
        KeyError: "label_weight: expected the batch to hold 'label_weight' for the loss's weight=, got keys ...
    """
    if not isinstance(batchdata, Mapping):
        raise TypeError(f"batchdata: expected a dict batch holding {sorted(keys.values())} (a DataLoader over dict "
                        f"items), got {describe(batchdata)}")
    moved = {}
    for name, key in keys.items():
        if key not in batchdata:
            raise KeyError(f"{key}: expected the batch to hold {key!r} for the loss's {name}=, got keys "
                           f"{sorted(map(str, batchdata))} (a pipeline writes it: transforms/train_boundary.yaml "
                           f"writes 'label_weight'; crop and flip it with the label)")
        value = batchdata[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{key}: expected a tensor in the batch (collated by a DataLoader), got {describe(value)}")
        moved[name] = plain_tensor(value.to(device=device, non_blocking=non_blocking, **dict(to_kwargs or {})))
    return moved


def _loss_keys(weight_key: Any, mask_key: Any, loss_keys: Any) -> dict[str, str]:
    """The loss keyword -> batch key mapping from the trainer's three arguments, checked."""
    for name, value in (("weight_key", weight_key), ("mask_key", mask_key)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TypeError(f"{name}: expected a batch key (a non-empty str) or None, got {describe(value)}")
    extra = {} if loss_keys is None else loss_keys
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                                 for k, v in extra.items()):
        raise TypeError(f"loss_keys: expected a mapping of loss keyword -> batch key (non-empty strs), e.g. "
                        f"{{'skeleton': 'label_skeleton'}}, or None, got {describe(loss_keys)}")
    keys = {name: key for name, key in (("weight", weight_key), ("mask", mask_key)) if key is not None}
    clash = sorted(set(keys) & set(extra))
    if clash:
        raise ValueError(f"loss_keys: expected keywords other than those set by weight_key / mask_key, got {clash}")
    keys.update(extra)
    if not keys:
        raise ValueError("weight_key, mask_key, loss_keys: expected at least one batch key for the loss, got none "
                         "(without one, use monai.engines.SupervisedTrainer)")
    return keys


def _check_loss_takes(loss: Callable, names: list[str]) -> None:
    """Refuse a loss whose ``forward`` (or call) has no keyword for one of ``names``."""
    target = loss.forward if isinstance(loss, torch.nn.Module) else loss
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the call itself will tell
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    takes = {p.name for p in params if p.kind in named}
    missing = [n for n in names if n not in takes]
    if missing:
        raise TypeError(f"loss_function: expected a loss that takes the keywords {missing} (a voxweight loss: "
                        f"forward(input, target, weight=None, *, mask=None)), got {type(loss).__name__} with "
                        f"{getattr(target, '__name__', 'call')}{inspect.signature(target)}")


class WeightedSupervisedTrainer(SupervisedTrainer):
    """MONAI's ``SupervisedTrainer`` that passes the batch's weight map (and mask, ...) to the loss.

    Every iteration computes ``loss_function(pred, label, weight=batch[weight_key], mask=batch[mask_key],
    **{k: batch[v] for k, v in loss_keys.items()}).mean()`` instead of ``loss_function(pred, label).mean()``,
    the maps moved to the trainer's device (``non_blocking`` and ``to_kwargs`` honoured) as plain tensors.
    Everything else is MONAI's iteration: events (``FORWARD_COMPLETED``, ``LOSS_COMPLETED``, ...), AMP,
    gradient accumulation, ``optim_set_to_none``, ``decollate``, metrics and handlers. While an iteration
    runs, ``engine.loss_function`` is a ``functools.partial`` of the loss (``.func`` is the loss itself);
    between iterations it is the loss. The module docstring says why this design.

    Args:
        *args: ``monai.engines.SupervisedTrainer``'s, in its order (``device, max_epochs, train_data_loader,
            network, optimizer, loss_function, ...``).
        weight_key: the batch key of the voxel weight map, passed as ``weight=``; ``None`` for none.
        mask_key: the batch key of a validity mask, passed as ``mask=``; ``None`` (default) for none.
        loss_keys: further loss keyword -> batch key, e.g. ``{"skeleton": "label_skeleton"}`` for
            ``DiceCESkeletonRecall`` with the ``train_tubular`` pipeline.
        **kwargs: ``monai.engines.SupervisedTrainer``'s keyword arguments (an unknown one raises its
            ``TypeError``), except ``iteration_update``.

    Raises:
        TypeError: for a key that is not a non-empty str, or a loss that takes none of the keywords.
        ValueError: if no key is given, ``loss_keys`` repeats ``weight`` / ``mask``, or an
            ``iteration_update`` would replace the iteration that passes the maps.
        KeyError: while running, naming the key, when a batch lacks it (see :func:`batch_loss_kwargs`).

    Shape:
        Batches ``{"image": [B, C_in, *S], "label": [B, C, *S], weight_key: [B, C or 1, *S]}``; the loss
        checks that the map broadcasts to the prediction.

    Example:
        >>> import voxweight
        >>> batch = {"image": torch.randn(2, 1, 8, 8, 8), "label": (torch.rand(2, 1, 8, 8, 8) > 0.5).float(),
        ...          "label_weight": torch.rand(2, 1, 8, 8, 8)}
        >>> net = torch.nn.Conv3d(1, 1, 3, padding=1)
        >>> trainer = WeightedSupervisedTrainer(device="cpu", max_epochs=1, train_data_loader=[batch],
        ...     network=net, optimizer=torch.optim.Adam(net.parameters()), loss_function=voxweight.VoxelWeightedBCE())
        >>> trainer.run()
        >>> trainer.state.iteration, type(trainer.loss_function).__name__
        (1, 'VoxelWeightedBCE')
    """

    def __init__(self, *args: Any, weight_key: str | None = "label_weight", mask_key: str | None = None,
                 loss_keys: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        if kwargs.get("iteration_update") is not None:
            raise ValueError(f"iteration_update: expected None (WeightedSupervisedTrainer's own iteration passes "
                             f"the batch's maps to the loss), got {describe(kwargs['iteration_update'])}")
        self.loss_keys = _loss_keys(weight_key, mask_key, loss_keys)
        super().__init__(*args, **kwargs)
        _check_loss_takes(self.loss_function, list(self.loss_keys))

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        """MONAI's iteration, with ``engine.loss_function`` bound to this batch's maps while it runs."""
        extra = batch_loss_kwargs(batchdata, self.loss_keys, device=engine.state.device,
                                  non_blocking=engine.non_blocking, to_kwargs=engine.to_kwargs)
        loss = engine.loss_function
        engine.loss_function = functools.partial(loss, **extra)
        try:
            return super()._iteration(engine, batchdata)
        finally:
            engine.loss_function = loss
