"""Where the voxweight nnU-Net trainers live, and whether a usable nnU-Net is installed.

nnU-Net finds a trainer by its class name: first among its own trainers, then in every folder listed in the
``nnUNet_extTrainer`` environment variable (``os.pathsep``-separated), whose modules it imports as top-level
names. :func:`trainer_directory` is that folder for voxweight (``voxweight nnunet-path --export`` prints the
``export`` line).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

__all__ = ["INSTALL_HINT", "MIN_NNUNET_VERSION", "check_nnunet", "trainer_directory"]

MIN_NNUNET_VERSION = (2, 8)
INSTALL_HINT = ("pip install 'voxweight[nnunet]' (nnunetv2 >= 2.8), then see the README section "
                "'Use it in nnU-Net and MONAI'")


def trainer_directory() -> Path:
    """The folder of the voxweight nnU-Net trainer modules: the value for ``nnUNet_extTrainer``.

    Returns:
        An absolute path to an existing folder (inside the installed voxweight package).

    Example:
        >>> trainer_directory().name, (trainer_directory() / "nnUNetTrainerVoxweightBoundary.py").is_file()
        ('trainers', True)
    """
    return (Path(__file__).resolve().parent / "trainers").absolute()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


def check_nnunet() -> str:
    """Check that nnU-Net v2 (>= 2.8) can be imported; return its version.

    Returns:
        The installed nnunetv2 version string.

    Raises:
        ImportError: when nnunetv2 is missing or older than 2.8, with the install command and the README section.

    Example:
        >>> try:
        ...     version = check_nnunet()
        ... except ImportError as err:
        ...     version = str(err)
        >>> "2." in version or "voxweight[nnunet]" in version
        True
    """
    if importlib.util.find_spec("nnunetv2") is None:
        raise ImportError(f"nnunetv2: expected nnU-Net v2 >= 2.8 for the voxweight nnU-Net trainers, got none "
                          f"installed. Install it with {INSTALL_HINT}")
    try:
        version = importlib.metadata.version("nnunetv2")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(__import__("nnunetv2"), "__version__", "0")
    if _version_tuple(version) < MIN_NNUNET_VERSION:
        raise ImportError(f"nnunetv2: expected version >= 2.8 for the voxweight nnU-Net trainers (its trainer "
                          f"search and loss interfaces), got {version}. Upgrade with {INSTALL_HINT}")
    return version
