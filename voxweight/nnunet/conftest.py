"""pytest: the trainer modules subclass nnU-Net's trainer, so doctest collection skips them (tests/nnunet runs them).

This file is read by pytest only (no pytest import here); nnU-Net never sees it (it searches ``trainers/``).
"""

collect_ignore_glob = ["trainers/*.py"]
