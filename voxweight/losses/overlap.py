"""The pieces of the soft Dice, Tversky and generalized Dice losses (:mod:`voxweight.losses.dice`).

The activation, the target as per-channel values (one-hot for class indices), the weighted sums
``I = sum w p t``, ``P = sum w p^k``, ``T = sum w t^k``, the Sudre class weights, the losses and their reduction.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from voxweight._validate import check_same_device, check_tensor
from voxweight.checks import check_all, check_range
from voxweight.losses.align import multiply, widen_labels
from voxweight.losses.fused_dice import sigmoid_sums
from voxweight.losses.sums import weighted_sums
from voxweight.losses.sync import global_mean

__all__ = ["DiceOptions", "activate", "dice_losses", "dice_sums", "drop_background", "overlap_target", "reduce_dice",
           "safe_ratio", "sudre_weights"]

def overlap_target(target: Any, input: torch.Tensor, single_label: bool) -> torch.Tensor:
    """``target`` as values in [0, 1] of ``input``'s shape and dtype (class indices become one-hot).

    Args:
        target: values of ``input``'s shape (binary, soft, bool or integer), or, when ``single_label``, integer
            class indices ``[N, *spatial]`` or ``[N, 1, *spatial]`` (any integer dtype).
        input: the probabilities ``[N, C, *spatial]`` the target is compared with.
        single_label: whether class-index targets are allowed (softmax or probabilities given).

    Returns:
        The target, ``input``'s shape and dtype.

    Raises:
        TypeError: for a non-tensor, a complex target, or a floating target that would need to be class indices.
        ValueError: for a shape that does not line up, values outside [0, 1], indices outside ``[0, C)``.

    Shape:
        - input: ``[N, C, *spatial]``; target: the same, or ``[N, *spatial]`` / ``[N, 1, *spatial]`` indices.

    Example:
        >>> overlap_target(torch.tensor([[0, 2]]), torch.zeros(1, 3, 2), single_label=True)
        tensor([[[1., 0.],
                 [0., 0.],
                 [0., 1.]]])
    """
    check_tensor("target", target)
    check_same_device("target", target, input.device)
    if target.is_complex():
        raise TypeError(f"target: expected a real, bool or integer tensor, got dtype {target.dtype}")
    if target.shape == input.shape:
        check_range("target", target, 0.0, 1.0, "values in [0, 1]")
        return target.to(input.dtype)
    voxel_shape = (input.shape[0], *input.shape[2:])
    as_index = target.ndim == input.ndim and target.shape[1] == 1 and input.ndim > 1
    index_shape = tuple(target.shape[:1] + target.shape[2:]) if as_index else tuple(target.shape)
    if not single_label or index_shape != voxel_shape:
        hint = ""
        if single_label:
            hint = f" (or class indices of shape {list(voxel_shape)} or with a channel axis of size 1)"
        elif target.ndim == input.ndim - 1 and input.ndim > 1 and input.shape[1] == 1:
            hint = " (a target of shape [N, *spatial] needs its channel axis: target.unsqueeze(1))"
        raise ValueError(f"target: expected the shape of input {list(input.shape)}{hint}, got {list(target.shape)}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"target: expected integer class indices for a target of shape {list(target.shape)} "
                        f"(input has {input.shape[1]} channels), got dtype {target.dtype} (use target.long())")
    target = widen_labels(target)
    index = target.reshape(voxel_shape).long()
    channels = input.shape[1]
    check_all("target", (index >= 0) & (index < channels), f"class indices in [0, {channels - 1}]",
              "indices outside that range")
    one_hot = F.one_hot(index.clamp(0, channels - 1), channels).movedim(-1, 1)
    return one_hot.to(input.dtype)


def dice_sums(x: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, m: torch.Tensor | None,
              a: torch.Tensor | None, options: DiceOptions
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``I = sum w p t``, ``P = sum w p^k``, ``T = sum w t^k`` (k = 2 if squared) of ``p = activation(x)``.

    Sums run over the spatial axes (and the batch with ``options.batch``); masked voxels (``m`` False) count in
    none, whatever their logits; ``include_background=False`` drops channel 0 (of ``a`` too). The sigmoid and
    the sums are one compiled kernel with ``options.fused`` (:mod:`voxweight.losses.fused_dice`), else
    :func:`voxweight.losses.sums.weighted_sums`; both have a closed-form backward.

    Returns:
        ``(I, P, T, a)``: the sums ``[N, C']`` (``[C']`` with ``batch``) and the class weight of those channels.

    Shape:
        - x, t: ``[N, C, *spatial]``; w, m: broadcastable to them; a: ``[C]``.

    Example:
        >>> x, t = torch.zeros(1, 1, 2), torch.tensor([[[1.0, 1.0]]])
        >>> dice_sums(x, t, None, None, None, DiceOptions("sigmoid", True, False, False, .5, .5, None, 0, 0, "sum"))[:3]
        (tensor([[1.]]), tensor([[1.]]), tensor([[2.]]))
    """
    if options.activation == "sigmoid":  # per channel: drop the background before the activation
        if not options.include_background:
            x, t, w, a = drop_background(x, t, w, a)
            m = m if m is None or m.shape[1] == 1 else m[:, 1:]
        inter, pred, ground = sigmoid_sums(x, t, w, m, options.squared, options.fused)
    else:
        p = activate(x, options.activation)
        if m is not None:  # after the activation: a masked logit has no effect at any value
            p, t = torch.where(m, p, 0), torch.where(m, t, 0)
        if not options.include_background:
            p, t, w, a = drop_background(p, t, w, a)
        inter, pred, ground = weighted_sums(p, t, w, options.squared)
    if options.batch:
        inter, pred, ground = inter.sum(0), pred.sum(0), ground.sum(0)
    return inter, pred, ground, a


def sudre_weights(ground: torch.Tensor, batch: bool) -> torch.Tensor:
    """Generalized Dice class weights ``1 / ground^2`` (Sudre et al. 2017), defined for absent classes.

    A class absent from a sample (``ground == 0``) gets the largest weight of the classes present in that
    sample (over the batch with ``batch``), as MONAI's ``GeneralizedDiceLoss`` does; a sample with no class
    present gets 0 everywhere (its loss is then ``1 - smooth_nr / smooth_dr``). Weights beyond the dtype's
    range saturate at its largest finite value.

    Args:
        ground: ``sum_v w t`` per sample and channel ``[N, C]`` (``[C]`` with ``batch``), >= 0.
        batch: whether ``ground`` is per channel over the whole batch.

    Returns:
        The weights, ``ground``'s shape (differentiable in a weight map that needs a gradient).

    Shape:
        - ground: ``[N, C]`` or ``[C]``; output: the same.

    Example:
        >>> sudre_weights(torch.tensor([[2.0, 0.0, 4.0]]), batch=False)
        tensor([[0.2500, 0.2500, 0.0625]])
    """
    present = ground > 0
    top = torch.finfo(ground.dtype).max
    w = torch.where(present, 1 / torch.where(present, ground, torch.ones_like(ground)).square(), 0).clamp(max=top)
    if w.numel() == 0:
        return w
    largest = w.amax() if batch or w.ndim < 2 else w.amax(dim=1, keepdim=True)
    return torch.where(present, w, largest)


class DiceOptions(NamedTuple):
    """The validated options of the Dice loss (see :func:`voxweight.losses.dice.dice_options`)."""

    activation: str | None
    include_background: bool
    batch: bool
    squared: bool
    alpha: float
    beta: float
    generalized: str | None
    smooth_nr: float
    smooth_dr: float
    reduction: str
    sync: bool = False
    fused: bool = False


def activate(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    """``sigmoid(x)``, ``softmax(x, dim=1)``, or ``x`` itself checked to be probabilities (``None``).

    Args:
        x: logits, or probabilities for ``activation=None``.
        activation: ``"sigmoid"``, ``"softmax"`` or ``None``.

    Returns:
        The probabilities, ``x``'s shape.

    Raises:
        ValueError: for ``"softmax"`` over one channel, or ``None`` with values outside [0, 1].

    Shape:
        - x: ``[N, C, *spatial]``; output: the same.

    Example:
        >>> activate(torch.zeros(1, 2, 1), "softmax").flatten().tolist()
        [0.5, 0.5]
    """
    if activation == "sigmoid":
        return torch.sigmoid(x)
    if activation == "softmax":
        if x.shape[1] < 2:
            raise ValueError(f"activation: expected input with at least 2 channels for 'softmax' (a softmax over "
                             f"one channel is 1 everywhere), got shape {list(x.shape)}; use 'sigmoid'")
        return torch.softmax(x, dim=1)
    check_range("input", x, 0.0, 1.0, "probabilities in [0, 1] (activation=None)")
    return x


def drop_background(p: torch.Tensor, t: torch.Tensor, w: torch.Tensor | None, a: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Channel 0 removed from probabilities, targets, a per-channel map and a ``[C]`` class weight.

    Returns:
        ``(p, t, w, a)`` without channel 0.

    Raises:
        ValueError: for single-channel input (no channel would be left).

    Shape:
        - p, t: ``[N, C, *spatial]`` -> ``[N, C - 1, *spatial]``; w: dim 1 of size C or 1; a: ``[C]`` -> ``[C - 1]``.

    Example:
        >>> drop_background(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), None, None)[0].shape
        torch.Size([1, 2, 2])
    """
    if p.shape[1] < 2:
        raise ValueError(f"include_background: expected True for single-channel input (no channel would be "
                         f"left), got False for input of shape {list(p.shape)}")
    w = w[:, 1:] if w is not None and w.ndim > 1 and w.shape[1] > 1 else w
    return p[:, 1:], t[:, 1:], w, None if a is None else a[1:]


def dice_losses(inter: torch.Tensor, pred: torch.Tensor, ground: torch.Tensor, a: torch.Tensor | None,
                o: DiceOptions) -> torch.Tensor:
    """Per-(n, c) Dice or Tversky losses, or per-sample generalized Dice losses (channel axis kept, size 1).

    Formulas: Dice ``1 - (2 I + s_nr) / (P + T + s_dr)``; Tversky ``1 - (I + s_nr) / (I + alpha (P - I) +
    beta (T - I) + s_dr)``; Sudre ``1 - (2 sum_c g I + s_nr) / (sum_c g (P + T) + s_dr)``, ``g = a / T^2``.

    Returns:
        The losses.

    Shape:
        - inter, pred, ground: ``[N, C]`` or ``[C]``; a: ``[C]``; output: the same, or ``[N, 1]`` / ``[1]``.

    Example:
        >>> o = DiceOptions(None, True, False, False, 0.5, 0.5, None, 0.0, 0.0, "mean")
        >>> dice_losses(torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[2.0]]), None, o)
        tensor([[0.5000]])
    """
    if o.generalized is not None:
        g = multiply(sudre_weights(ground, o.batch), a)
        num = 2 * (g * inter).sum(-1, keepdim=True) + o.smooth_nr
        return 1 - safe_ratio(num, (g * (pred + ground)).sum(-1, keepdim=True) + o.smooth_dr)
    if (o.alpha, o.beta) != (0.5, 0.5):
        fp, fn = (pred - inter).clamp(min=0), (ground - inter).clamp(min=0)  # sum w p (1 - t), sum w (1 - p) t
        return 1 - safe_ratio(inter + o.smooth_nr, inter + o.alpha * fp + o.beta * fn + o.smooth_dr)
    return 1 - safe_ratio(2 * inter + o.smooth_nr, pred + ground + o.smooth_dr)


def safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, 1 where ``den`` is 0 (nothing predicted, nothing to find, no smoothing: agreement).

    Returns:
        The ratios; the gradient is finite (0) where ``den`` is 0.

    Example:
        >>> safe_ratio(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]))
        tensor([0.5000, 1.0000])
    """
    zero = den == 0
    return torch.where(zero, torch.ones_like(num), num / torch.where(zero, torch.ones_like(den), den))


def reduce_dice(loss: torch.Tensor, factor: torch.Tensor | None, reduction: str, sync: bool = False) -> torch.Tensor:
    """``"none"``: ``factor * loss``; ``"sum"``: its sum; ``"mean"``: its sum / sum(factor) (0 if that is 0).

    ``sync`` (a process group is in use): both sums run over every rank's rows (one all-reduce, with the
    gradient), so every rank returns the reduction of the whole batch's per-(n, c) losses.

    Returns:
        A scalar, or ``factor * loss`` for ``"none"``.

    Shape:
        - loss: ``[N, C]`` or ``[C]``; factor: broadcastable to it, or None (1).

    Example:
        >>> reduce_dice(torch.tensor([0.2, 0.6]), torch.tensor([3.0, 1.0]), "mean")
        tensor(0.3000)
    """
    weighted = loss if factor is None else loss * factor
    if reduction == "none":
        return weighted
    total = weighted.sum()
    if reduction == "sum":
        return global_mean(total, None) if sync else total
    den = (torch.ones_like(loss) if factor is None else factor.expand_as(loss)).sum()
    if sync:
        return global_mean(total, den)
    return torch.where(den > 0, total / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(total))
