"""Dataset statistics: exact per-class counts streamed over label files, and the weights they imply.

:class:`LabelStats` counts, merges and serialises; :func:`scan_labels` fills one from NIfTI label files
(found by :func:`list_label_files`, read whole by :func:`load_label`); :func:`pos_weight_from_counts` turns
counts into a ``pos_weight``; :func:`crop_prevalence` gives the expected counts inside training crops (what the
loss sees under pos/neg or nnU-Net sampling) and :func:`format_prevalence` prints both side by side;
:meth:`LabelStats.from_pipeline` counts what any pipeline yields. Pure numpy/torch/nibabel, no MONAI.

Modules, listed so that each imports only modules after it: ``scan`` (workers, adding up) and
``prevalence`` (crops), ``label_stats`` (the class), ``nifti`` (counting a file a slab at a time),
``level_weights`` (the class's weights from its counts at a level), ``files``
(finding and reading label files), ``from_pipeline`` (counting a pipeline's samples), ``weights`` (counts ->
weights), ``serialise`` (JSON), ``distributed`` (sums over ranks), ``images`` (opening one file with nibabel,
checked), ``counting`` (exact label counts), ``crop_windows`` (where the crops start), ``crop_counts`` (the
per-volume box sums of the crops).
"""

from voxweight.stats.files import list_label_files, load_label, read_errors
from voxweight.stats.images import LabelFileError
from voxweight.stats.label_stats import LabelStats
from voxweight.stats.prevalence import crop_prevalence, format_prevalence
from voxweight.stats.scan import scan_labels
from voxweight.stats.weights import pos_weight_from_counts

__all__ = [
    "LabelFileError",
    "LabelStats",
    "crop_prevalence",
    "format_prevalence",
    "list_label_files",
    "load_label",
    "pos_weight_from_counts",
    "read_errors",
    "scan_labels",
]
