"""The demo's figure: slices of a test volume, its weight map and the trained models' predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["save_figure"]


def save_figure(path: Path, images: list[torch.Tensor], labels: list[np.ndarray],
                probabilities: dict[str, torch.Tensor], label_path: str, spacing: tuple[float, ...],
                boundary: dict[str, float]) -> Path:
    """Save slices of the first test volume: image, label, weight map (log scale) and each model's prediction.

    Args:
        path: the PNG to write.
        images: test images ``[1, *spatial]``.
        labels: boolean test labels ``[*spatial]``.
        probabilities: model name -> debiased probabilities ``[V, 1, *spatial]``.
        label_path: the first label's file, named in the title.
        spacing: voxel size (mm) for the boundary map.
        boundary: the boundary map's ``w0`` and ``sigma``.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from voxweight.maps import boundary_weights, class_balance_weights

    z = int(np.argmax(labels[0].sum(axis=(0, 1))))  # the slice with the most foreground
    weight = class_balance_weights(labels[0].astype(np.float32)) + boundary_weights(
        labels[0].astype(np.uint8), mode="unet", spacing=spacing, **boundary) - 1
    panels = [("image", images[0][0, :, :, z].numpy(), "gray"), ("label", labels[0][:, :, z], "gray"),
              ("weight map (log scale)", weight[:, :, z], "magma")]
    panels += [(name, p[0, 0, :, :, z].numpy(), "viridis") for name, p in probabilities.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3))
    for ax, (title, data, cmap) in zip(axes, panels, strict=True):
        is_weight = title.startswith("weight")
        norm = LogNorm(vmin=max(float(data.min()), 1e-3), vmax=float(data.max())) if is_weight else None
        shown = ax.imshow(data.T, cmap=cmap, origin="lower", norm=norm)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        if is_weight or title in probabilities:
            fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.suptitle(f"slice z={z} of {Path(label_path).name}; predictions are debiased probabilities", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
