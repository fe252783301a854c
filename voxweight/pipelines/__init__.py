"""Pipelines as data: MONAI bundle-syntax YAML files built into a ``monai.transforms.Compose``.

The shipped pipelines live in the top-level ``transforms/`` folder of the source tree and in the
``voxweight.pipeline_configs`` package of the wheel. Each file has top-level settings (``pixdim``,
``roi_size``, ``sigma``, ...) referenced with ``@`` and a ``pipeline`` key holding the transforms.
By default a file may not run code (see :func:`load_pipeline` and ``voxweight.pipelines.safety``);
``trusted=True`` gives full MONAI bundle semantics. MONAI is imported inside the functions, so
``import voxweight`` stays light.
"""

from voxweight.pipelines.load import BUNDLE_PREFIX, PIPELINE_KEY, bundle_path, config_dir, list_pipelines, load_pipeline

_config_dir = config_dir  # the name older code and tests import

__all__ = ["BUNDLE_PREFIX", "PIPELINE_KEY", "bundle_path", "list_pipelines", "load_pipeline"]
