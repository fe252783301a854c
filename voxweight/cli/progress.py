"""Progress bars of the training commands: one tqdm bar per named run, the previous one closed when the next starts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["run_bars"]

Progress = Callable[[str, int, int], None]


@contextmanager
def run_bars(enabled: bool = True, prefix: str = "") -> Iterator[Progress | None]:
    """A ``progress(name, step, total)`` callback drawing one bar per run ``name`` (None when not ``enabled``).

    Every bar is closed on leaving, also after an error or an interrupt.

    Example:
        >>> with run_bars(False) as progress:
        ...     progress is None
        True
    """
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bars: dict[str, tqdm] = {}

    def progress(name: str, step: int, total: int) -> None:
        if name not in bars:
            for bar in bars.values():
                bar.close()
            bars[name] = tqdm(desc=f"{prefix}{name}", total=total, unit="step", leave=False)
        bars[name].update(1)

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()
