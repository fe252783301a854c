"""The training commands' progress bars: one per run, each closed when the next starts and on leaving."""

from __future__ import annotations

import pytest

from voxweight.cli.progress import run_bars


def test_one_bar_per_run_all_closed_even_after_an_error(capsys, monkeypatch):
    import tqdm.auto

    made = []
    real = tqdm.auto.tqdm

    def recording(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tqdm.auto, "tqdm", recording)
    with pytest.raises(KeyboardInterrupt), run_bars(prefix="training ") as progress:
        for step in (1, 2):
            progress("a", step, 2)
        progress("b", 1, 3)
        assert made[0].n == 2 and made[0].disable and not made[1].disable  # a closed when b started (close disables)
        raise KeyboardInterrupt
    assert [bar.desc for bar in made] == ["training a", "training b"]
    assert [bar.total for bar in made] == [2, 3] and all(bar.disable for bar in made)  # b closed on the way out


def test_disabled_bars_give_no_callback():
    with run_bars(False) as progress:
        assert progress is None
