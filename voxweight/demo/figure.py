"""The demo's figure: a slice of a test volume, its boundary bonus and the trained models' predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["draw_figure", "save_figure"]


def save_figure(path: Path, images: list[torch.Tensor], labels: list[np.ndarray],
                probabilities: dict[str, torch.Tensor], label_path: str, spacing: tuple[float, ...],
                boundary: dict[str, float], threshold: float = 0.5) -> Path:
    """Save :func:`draw_figure`'s figure as a PNG at ``path`` (the arguments are those of :func:`draw_figure`).

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> label = np.zeros((16, 16, 8), bool)
        >>> label[3:7, 3:7, 2:6] = label[8:12, 3:7, 2:6] = True
        >>> prob = torch.as_tensor(label, dtype=torch.float32)[None, None] * 0.4
        >>> out = save_figure(Path(tempfile.mkdtemp()) / "demo.png", [torch.rand(1, 16, 16, 8)], [label],
        ...                   {"plain": prob}, "x.nii.gz", (1.0, 1.0, 2.0), {"w0": 5.0, "sigma": 3.0})
        >>> out.is_file()
        True
    """
    import matplotlib.pyplot as plt

    fig = draw_figure(images, labels, probabilities, label_path, spacing, boundary, threshold)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw_figure(images: list[torch.Tensor], labels: list[np.ndarray], probabilities: dict[str, torch.Tensor],
                label_path: str, spacing: tuple[float, ...], boundary: dict[str, float],
                threshold: float = 0.5) -> Any:
    """One slice of the first test volume: image, label, boundary bonus and each model's prediction.

    The boundary bonus ``w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` (the U-Net map minus 1,
    :func:`voxweight.maps.boundary_weights`) is drawn on a linear scale from 0 to its maximum on the
    slice shown, which is the slice holding the most bonus (the one with the most foreground if there
    is none); the class-balance weights it is added to are two numbers, given in its title. Every prediction
    is drawn on the same 0-1 scale (one colour bar), with the ``threshold`` contour in white and its
    highest probability in the title, so a model whose probabilities stay below the threshold still
    shows what it found.

    Args:
        images: test images ``[1, *spatial]``.
        labels: boolean test labels ``[*spatial]``.
        probabilities: model name -> debiased probabilities ``[V, 1, *spatial]``.
        label_path: the first label's file, named in the title.
        spacing: voxel size (mm) for the boundary map.
        boundary: the boundary map's ``w0`` and ``sigma``.
        threshold: the probability whose contour is drawn.

    Returns:
        The ``matplotlib`` figure (Agg backend): axes 0-2 image, label, bonus; then one per model.

    Shape:
        3D volumes ``[X, Y, Z]``; the figure shows ``[:, :, z]``.

    Example:
        >>> label = np.zeros((16, 16, 8), bool)
        >>> label[3:7, 3:7, 2:6] = label[8:12, 3:7, 2:6] = True  # two boxes, one voxel apart
        >>> prob = torch.as_tensor(label, dtype=torch.float32)[None, None] * 0.4  # all below 0.5
        >>> fig = draw_figure([torch.rand(1, 16, 16, 8)], [label], {"plain": prob}, "x.nii.gz", (1.0, 1.0, 2.0),
        ...                   {"w0": 5.0, "sigma": 3.0})
        >>> fig.axes[3].images[0].get_clim()  # the prediction: on 0-1 whatever its own range
        (0.0, 1.0)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from voxweight.maps import boundary_weights, class_balance_weights

    label = labels[0]
    balance = class_balance_weights(label.astype(np.float32))
    fg, bg = (float(balance[side].max()) if side.any() else 1.0 for side in (label, ~label))
    bonus = boundary_weights(label.astype(np.uint8), mode="unet", spacing=spacing, **boundary) - 1
    # where the bonus can be seen: the slice with the most of it, else the one with the most foreground
    per_slice = bonus.sum(axis=(0, 1)) if bonus.max() > 1e-3 * boundary["w0"] else label.sum(axis=(0, 1))
    z = int(np.argmax(per_slice))
    top = max(float(bonus[:, :, z].max()), 1e-3 * boundary["w0"])
    fig, axes = plt.subplots(1, 3 + len(probabilities), figsize=(2.6 * (3 + len(probabilities)), 3.2),
                             layout="constrained")
    axes[0].imshow(images[0][0, :, :, z].numpy().T, cmap="gray", origin="lower")
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(label[:, :, z].T, cmap="gray", origin="lower")
    axes[1].set_title("label", fontsize=9)
    shown = axes[2].imshow(bonus[:, :, z].T, cmap="magma", origin="lower", vmin=0.0, vmax=top)
    axes[2].set_title(f"boundary bonus (linear 0-{top:.2g}, w0={boundary['w0']:g})\n"
                      f"added to class balance fg {fg:.1f}, bg {bg:.2f}", fontsize=8)
    fig.colorbar(shown, ax=axes[2], fraction=0.046)
    for ax, (name, prob) in zip(axes[3:], probabilities.items(), strict=True):
        data = prob[0, 0, :, :, z].numpy()
        shown = ax.imshow(data.T, cmap="viridis", origin="lower", vmin=0.0, vmax=1.0)
        if data.min() < threshold < data.max():
            ax.contour(data.T, levels=[threshold], colors="white", linewidths=0.8, origin="lower")
        ax.set_title(f"{name}\nmax p {float(prob.max()):.2f}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(shown, ax=list(axes[3:]), fraction=0.015, label="debiased probability")
    fig.suptitle(f"slice z={z} of {Path(label_path).name}: predictions on one 0-1 scale, white line = "
                 f"{threshold:g} contour", fontsize=9)
    return fig
