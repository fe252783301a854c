"""Alias of the flat layout: ``voxweight.scan`` keeps working; the code lives in :mod:`voxweight.stats`.

Nothing is defined here (``tests/test_architecture.py`` holds it to that): new code imports from
:mod:`voxweight.stats`, and new code goes there too.
"""

from voxweight.stats import list_label_files, load_label, scan_labels

__all__ = ["list_label_files", "load_label", "scan_labels"]
