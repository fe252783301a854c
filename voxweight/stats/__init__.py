"""Dataset statistics: exact per-class counts streamed over label files, and the weights they imply.

:class:`LabelStats` counts, merges and serialises; :func:`scan_labels` fills one from NIfTI label files;
:func:`pos_weight_from_counts` turns counts into a ``pos_weight``. Pure numpy/torch/nibabel, no MONAI.
"""

from voxweight.stats.label_stats import LabelStats, pos_weight_from_counts
from voxweight.stats.scan import list_label_files, load_label, scan_labels

__all__ = ["LabelStats", "list_label_files", "load_label", "pos_weight_from_counts", "scan_labels"]
