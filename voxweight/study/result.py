"""A study's result: per-seed scores of every recipe, their mean +/- sd, and paired comparisons with the baseline.

For a recipe ``R``, a metric and the seeds ``s`` where both are defined, the paired differences
``d_s = m(R, s) - m(bce, s)`` (same split, initialisation and batches) give the mean difference and its 95%
confidence interval ``mean(d) +/- t(0.975, n - 1) sd(d) / sqrt(n)``. ``R`` beats the baseline beyond the seed
noise when the interval excludes 0 on the metric's better side (``+`` in the table), is worse when it excludes 0
on the other (``-``), and is within the noise otherwise (``=``); one seed gives no interval (``?``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as scipy_stats

from voxweight.study.files import write_atomic
from voxweight.study.metrics import METRICS

__all__ = ["JSON_VERSION", "Comparison", "StudyResult", "write_atomic"]

JSON_VERSION = 1
_MARKS = {"better": "+", "worse": "-", "within noise": "=", "n/a": "?"}


class Comparison(NamedTuple):
    """A recipe against the baseline on one metric: the mean paired difference, its 95% interval, a verdict."""

    mean: float | None
    low: float | None
    high: float | None
    seeds: int
    verdict: str  # "better", "worse", "within noise" or "n/a"


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


@dataclass
class StudyResult:
    """Scores of a study: ``scores[recipe][metric]`` holds one value (or None: not applicable) per seed.

    Example:
        >>> r = StudyResult(["bce", "dice_bce"], [0, 1],
        ...                 {"bce": {"dice": [0.5, 0.6]}, "dice_bce": {"dice": [0.7, 0.8]}})
        >>> r.comparison("dice_bce", "dice").verdict, r.summary()["dice_bce"]["dice"][0]
        ('better', 0.75)
    """

    recipes: list[str]
    seeds: list[int]
    scores: dict[str, dict[str, list[float | None]]]
    baseline: str = "bce"
    metadata: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> list[str]:
        """The metrics present, in :data:`~voxweight.study.metrics.METRICS` order."""
        present = {m for per in self.scores.values() for m in per}
        return [m for m in METRICS if m in present] + sorted(present - set(METRICS))

    def summary(self) -> dict[str, dict[str, tuple[float | None, float | None]]]:
        """``(mean, sd)`` over seeds of each recipe and metric (None values left out; sd 0 for one seed)."""
        return {r: {m: _mean_sd([v for v in self.scores[r].get(m, []) if v is not None]) for m in self.metrics()}
                for r in self.recipes}

    def comparison(self, recipe: str, metric: str) -> Comparison:
        """``recipe`` minus the baseline on ``metric``, paired by seed (see the module docstring)."""
        base, ours = self.scores.get(self.baseline, {}).get(metric, []), self.scores[recipe].get(metric, [])
        d = [a - b for a, b in zip(ours, base, strict=False) if a is not None and b is not None]
        if len(d) < 2:
            return Comparison(float(np.mean(d)) if d else None, None, None, len(d), "n/a")
        mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
        half = float(scipy_stats.t.ppf(0.975, len(d) - 1)) * sd / math.sqrt(len(d))
        low, high = mean - half, mean + half
        higher = METRICS[metric].higher_is_better if metric in METRICS else True
        verdict = "within noise"
        if low > 0 or high < 0:
            verdict = "better" if (low > 0) == higher else "worse"
        return Comparison(mean, low, high, len(d), verdict)

    def format_table(self) -> str:
        """Metrics as rows, recipes as columns: ``mean +/- sd`` and the verdict against the baseline."""
        width = max(13, *(len(r) + 1 for r in self.recipes))
        head = f"{'metric':<16}" + "".join(f"{r:>{width}}" for r in self.recipes)
        lines, summary = [head, "-" * len(head)], self.summary()
        for m in self.metrics():
            label = METRICS[m].label if m in METRICS else m
            cells = []
            for r in self.recipes:
                mean, sd = summary[r][m]
                mark = "" if r == self.baseline else _MARKS[self.comparison(r, m).verdict]
                spread = f"±{sd:.3f}" if len(self.seeds) > 1 else ""  # one seed: no spread to show
                cells.append("n/a" if mean is None else f"{mean:.3f}{spread}{mark}")
            lines.append(f"{label:<16}" + "".join(f"{c:>{width}}" for c in cells))
        n = len(self.seeds)
        spread = "mean ± sd over" if n > 1 else "the value of"
        lines.append(f"{spread} {n} seed{'s' if n != 1 else ''}; vs {self.baseline} (paired by seed, 95% CI): "
                     "+ better, - worse, = within the seed noise, ? one seed (no interval)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (no NaN: absent values are None)."""
        return {"version": JSON_VERSION, "recipes": self.recipes, "seeds": self.seeds, "baseline": self.baseline,
                "scores": self.scores, "metadata": self.metadata,
                "comparisons": {r: {m: self.comparison(r, m)._asdict() for m in self.metrics()}
                                for r in self.recipes if r != self.baseline}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyResult:
        """The inverse of :meth:`to_dict` (comparisons are recomputed).

        Raises:
            ValueError: for data of another version or without the fields.
        """
        if not isinstance(data, dict) or data.get("version") != JSON_VERSION:
            raise ValueError(f"data: expected a voxweight study result of version {JSON_VERSION}, got "
                             f"{data.get('version') if isinstance(data, dict) else type(data).__name__}")
        try:
            return cls(list(data["recipes"]), [int(s) for s in data["seeds"]], data["scores"], data["baseline"],
                       dict(data.get("metadata", {})))
        except KeyError as e:
            raise ValueError(f"data: expected the field {e.args[0]!r} of a study result") from None

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        return write_atomic(path, (json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n").encode())

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> StudyResult:
        """Read a result written by :meth:`save_json` (plain JSON: nothing in it runs)."""
        return cls.from_dict(json.loads(Path(path).read_text()))
