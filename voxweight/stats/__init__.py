"""Dataset statistics: exact per-class counts streamed over label files, and the weights they imply.

:class:`LabelStats` counts, merges and serialises; :func:`scan_labels` fills one from NIfTI label files
(found by :func:`list_label_files`, read whole by :func:`load_label`); :func:`pos_weight_from_counts` turns
counts into a ``pos_weight``. Pure numpy/torch/nibabel, no MONAI.

Modules, listed so that each imports only modules after it: ``scan`` (workers, adding up),
``label_stats`` (the class), ``nifti`` (streaming NIfTI reader), ``files`` (finding and reading label
files), ``weights`` (counts -> weights), ``serialise`` (JSON), ``distributed`` (sums over ranks),
``counting`` (exact label counts).
"""

from voxweight.stats.files import list_label_files, load_label
from voxweight.stats.label_stats import LabelStats
from voxweight.stats.scan import scan_labels
from voxweight.stats.weights import pos_weight_from_counts

__all__ = ["LabelStats", "list_label_files", "load_label", "pos_weight_from_counts", "scan_labels"]
