"""Writing the study's files atomically: a hidden temporary name in the target's folder, then one rename."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["save_atomic", "write_atomic"]


def save_atomic(path: str | os.PathLike[str], save: Callable[[Path], object]) -> Path:
    """``save(tmp)`` to a hidden, unique name with ``path``'s suffixes in its folder, then rename it to ``path``.

    The suffixes let format-guessing writers (``nib.save``) write the right format; a failure (or an interrupt)
    removes the temporary file, so ``path`` is either untouched or whole.

    Example:
        >>> import tempfile
        >>> save_atomic(Path(tempfile.mkdtemp()) / "a.txt", lambda p: p.write_text("ok")).read_text()
        'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{''.join(path.suffixes)}"
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`save_atomic`: never a partial file.

    Example:
        >>> import tempfile
        >>> write_atomic(Path(tempfile.mkdtemp()) / "a.txt", b"ok").read_bytes()
        b'ok'
    """
    return save_atomic(path, lambda tmp: tmp.write_bytes(data))
