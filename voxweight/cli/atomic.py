"""Safe file handling for the commands: atomic writes, outputs that never replace inputs, named data errors.

A reader never sees a partially written file, an interrupted write (error, Ctrl-C, SIGTERM, SIGHUP)
leaves no temporary file, a written file gets the permissions any file the user creates gets, an output
that is one of the inputs is refused before any work, and every unreadable input is reported as
``error: <file>: <reason>``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["DataError", "UsageError", "atomic_path", "atomic_write_text", "check_not_an_input", "check_suffix",
           "created_file_mode", "data_errors", "quiet_broken_pipe", "read_input"]

T = TypeVar("T")

# Signals that end the process but that Python does not turn into an exception by itself.
CLEANUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class DataError(Exception):
    """An input file that cannot be used: printed as ``error: <file>: <reason>``, exit code 1.

    Example:
        >>> str(DataError("a.nii.gz", "expected a 3D label map, got shape [4, 4]"))
        'a.nii.gz: expected a 3D label map, got shape [4, 4]'
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")


class UsageError(Exception):
    """A command line that cannot be run as asked (an output that is an input, an unknown format): exit code 2."""


def data_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "this input cannot be used" rather than a bug.

    What :func:`voxweight.stats.scan_labels` skips (:func:`voxweight.stats.read_errors`: ``OSError``,
    ``EOFError``, ``zlib.error``, ``ValueError``, ``TypeError``, nibabel's ``ImageFileError`` and
    ``HeaderDataError``), plus ``MemoryError`` and ``ArithmeticError`` (a header that claims more voxels
    than fit, an overflow).

    Example:
        >>> MemoryError in data_errors() and OSError in data_errors()
        True
    """
    from voxweight.stats import read_errors

    return (*read_errors(), MemoryError, ArithmeticError)


def read_input(path: str | os.PathLike[str], read: Callable[[str], T], what: str = "") -> T:
    """``read(path)``, with any data error turned into a :class:`DataError` naming ``path`` (and ``what``).

    Example:
        >>> read_input("missing.nii.gz", open, "--weights")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        voxweight.cli.atomic.DataError: missing.nii.gz: --weights: FileNotFoundError: ...
    """
    name = str(path)
    if os.path.isdir(name):
        raise DataError(name, f"{what + ': ' if what else ''}expected a file, got a directory")
    try:
        return read(name)
    except data_errors() as err:
        reason = str(err).removeprefix(f"{name}: ")
        if not isinstance(err, ValueError | TypeError) or not reason:
            reason = f"{type(err).__name__}: {reason or 'unreadable'}".replace(f" {name!r}", "").rstrip(": ")
        raise DataError(name, f"{what + ': ' if what else ''}{reason}") from None


def check_not_an_input(option: str, output: str | os.PathLike[str] | None,
                       inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Refuse an output that is one of the inputs (same path, or the same file through a link or a hard link).

    Raises:
        UsageError: naming ``option`` and the input it would replace.

    Example:
        >>> check_not_an_input("OUT", __file__, [__file__])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        voxweight.cli.atomic.UsageError: OUT: expected a file other than the inputs, got ... which is the input ...
    """
    if output is None or not os.path.exists(output):
        return
    for item in inputs:
        if item is not None and os.path.exists(item) and os.path.samefile(output, item):
            raise UsageError(f"{option}: expected a file other than the inputs, got {output} which is the input "
                             f"{item} (it would be replaced)")


def check_suffix(option: str, path: str | os.PathLike[str], suffixes: Iterable[str]) -> str:
    """The suffix of ``path`` among ``suffixes`` (case-insensitive, the longest that matches).

    Raises:
        UsageError: for any other suffix, listing the formats that can be written.

    Example:
        >>> check_suffix("OUT", "w.NII.GZ", (".nii", ".nii.gz"))
        '.nii.gz'
    """
    allowed = sorted(suffixes, key=len, reverse=True)
    lower = str(path).lower()
    for suffix in allowed:
        if lower.endswith(suffix):
            return suffix
    raise UsageError(f"{option}: expected a file name ending in {', '.join(sorted(allowed))} (the formats this "
                     f"command writes), got {path}")


def quiet_broken_pipe() -> int:
    """After stdout's reader went away (``voxweight stats ... | head``): silence stdout, return 0.

    Python's own convention (its docs on SIGPIPE): point stdout at ``os.devnull`` so that the
    interpreter's final flush does not print a second error.

    Example:
        >>> quiet_broken_pipe()  # doctest: +SKIP
        0
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def created_file_mode(existing: str | os.PathLike[str] | None = None) -> int:
    """The mode a file gets when the user creates it: ``0o666 & ~umask``, or the mode of the file it replaces.

    Example:
        >>> old = os.umask(0o022); created_file_mode() == 0o644; _ = os.umask(old)
        True
    """
    if existing is not None:
        with contextlib.suppress(OSError):
            return stat.S_IMODE(os.stat(existing).st_mode)
    umask = os.umask(0o077)  # read it; there is no other portable way
    os.umask(umask)
    return 0o666 & ~umask


class _Interrupted(BaseException):
    """Raised by the temporary signal handler so that the write's cleanup runs."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise _Interrupted(signum)


@contextlib.contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """While the block runs, SIGTERM/SIGHUP raise (so ``finally`` clauses run); previous handlers restored after.

    A signal the process ignores (SIGHUP under ``nohup``) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = [s for s in CLEANUP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, _raise_interrupted) for s in watched}
    try:
        yield
    except _Interrupted as err:
        for s, handler in previous.items():
            signal.signal(s, handler)
        previous = {}
        raise SystemExit(128 + err.signum) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The temporary name keeps ``path``'s suffixes (``.nii.gz`` writers look at them). The file gets the
    mode of the file it replaces, or ``0o666 & ~umask`` for a new one. SIGTERM and SIGHUP during the
    write remove the temporary file and exit with ``128 + signal`` (SIGINT raises ``KeyboardInterrupt``,
    which removes it too).

    Example:
        >>> import tempfile
        >>> folder = tempfile.TemporaryDirectory()
        >>> with atomic_path(f"{folder.name}/out.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> os.listdir(folder.name), Path(folder.name, "out.txt").read_text()
        (['out.txt'], 'done')
        >>> folder.cleanup()
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: expected an existing directory to write into, got {target.parent}")
    if target.is_dir():
        raise IsADirectoryError(f"{target}: expected a file to write, got a directory")
    suffix = "".join(target.suffixes)
    with _cleanup_on_signals():
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        try:
            os.close(fd)
            yield Path(tmp)
            os.chmod(tmp, created_file_mode(target))
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8), with :func:`atomic_path`'s guarantees.

    Example:
        >>> import tempfile
        >>> folder = tempfile.TemporaryDirectory()
        >>> atomic_write_text(f"{folder.name}/a.json", "{}")
        >>> Path(folder.name, "a.json").read_text()
        '{}'
        >>> folder.cleanup()
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
