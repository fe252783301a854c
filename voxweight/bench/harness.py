"""The bench harness: paired timing and the results table (the cases and :func:`run_bench` build on it).

Every case runs its baseline and the voxweight operation interleaved (alternating order) for several
repeats and reports the medians and the time ratio ``voxweight / baseline`` (below 1 is faster), with
the target ratio the project holds itself to. The ratio is the median over repeats of each repeat's own
ratio: a repeat times the two back to back, so a machine that speeds up or slows down between repeats
(shared cores, frequency changes) moves both of its timings and cancels out of the ratio. Numbers
depend on the machine: run it on yours.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

__all__ = ["BenchConfig", "BenchResult", "PairTiming", "backward_step", "format_results", "peak_rises_mib",
           "time_pair", "time_paired"]


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: cube edge ``size``, object count ``instances``, ``repeats``, torch ``threads``."""

    size: int = 128
    instances: int = 20
    repeats: int = 5
    threads: int = 1
    device: str = "cpu"


@dataclass(frozen=True)
class BenchResult:
    """One comparison: the baseline's and voxweight's measurement, and the target ratio.

    Measurements are median milliseconds unless ``unit`` says otherwise (``"MiB"`` of peak memory).
    ``paired_ratio``, where the two were timed in pairs (:func:`time_paired`), is the median of the
    per-repeat ratios, and is then the :attr:`ratio`.
    """

    operation: str
    baseline: str
    baseline_ms: float
    voxweight_ms: float
    max_ratio: float
    note: str = ""
    unit: str = "ms"
    paired_ratio: float | None = None

    @classmethod
    def timed(cls, operation: str, baseline: str, timing: PairTiming, max_ratio: float, note: str = ""
              ) -> BenchResult:
        """A result from a :class:`PairTiming` (medians and the paired ratio)."""
        return cls(operation, baseline, timing.baseline_ms, timing.candidate_ms, max_ratio, note,
                   paired_ratio=timing.ratio)

    @property
    def ratio(self) -> float:
        """The time (or memory) ratio voxweight / baseline: below 1 means voxweight is faster (or lighter).

        The paired ratio where there is one, else ``voxweight_ms / baseline_ms``; a zero baseline gives
        1.0 when voxweight's value is zero too, else ``inf``.
        """
        if self.paired_ratio is not None:
            return self.paired_ratio
        return _ratio(self.baseline_ms, self.voxweight_ms)

    @property
    def met(self) -> bool:
        """Whether the measured ratio meets the target."""
        return self.ratio <= self.max_ratio

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict, with the ratio and whether the target was met."""
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


@dataclass(frozen=True)
class PairTiming:
    """Median milliseconds per call of a baseline and a candidate, and the median per-repeat ratio."""

    baseline_ms: float
    candidate_ms: float
    ratio: float


def backward_step(x: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor]
                  ) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A timed step: ``loss`` forward and backward on a fresh leaf copy of ``x``; it returns the loss and gradient.

    Example:
        >>> value, grad = backward_step(torch.ones(3), lambda z: (2 * z).sum())()
        >>> value.item(), grad.tolist()
        (6.0, [2.0, 2.0, 2.0])
    """
    def run() -> tuple[torch.Tensor, torch.Tensor]:
        xi = x.detach().requires_grad_()
        value = loss(xi)
        value.backward()
        return value.detach(), xi.grad

    return run


def time_paired(baseline: Callable[[], object], candidate: Callable[[], object], repeats: int,
                device: str = "cpu", inner: int = 1) -> PairTiming:
    """Time two callables in back-to-back pairs, after one warm-up call each.

    Each of the ``repeats`` pairs runs the two one after the other (the order alternates between pairs)
    and times ``inner`` back-to-back calls of each (divided by ``inner``), which evens out the noise of
    short operations. The ratio is ``median_r(candidate_r / baseline_r)``: drifts of the machine's speed
    between pairs cancel out of it. A zero baseline time counts as a ratio of 1 (both zero) or ``inf``.

    Example:
        >>> t = time_paired(lambda: sum(range(1000)), lambda: sum(range(10)), repeats=3)
        >>> t.baseline_ms > 0 and t.candidate_ms > 0 and t.ratio < 1
        True
    """
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times: dict[int, list[float]] = {0: [], 1: []}
    fns = (baseline, candidate)
    for fn in fns:
        fn()
    for r in range(repeats):
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            sync()
            start = time.perf_counter()
            for _ in range(inner):
                fns[i]()
            sync()
            times[i].append((time.perf_counter() - start) * 1e3 / inner)
    ratios = [_ratio(b, c) for b, c in zip(times[0], times[1], strict=True)]
    return PairTiming(statistics.median(times[0]), statistics.median(times[1]), statistics.median(ratios))


def time_pair(baseline: Callable[[], object], candidate: Callable[[], object], repeats: int,
              device: str = "cpu", inner: int = 1) -> tuple[float, float]:
    """Median milliseconds per call of two callables, timed as :func:`time_paired` does.

    Example:
        >>> base, cand = time_pair(lambda: sum(range(1000)), lambda: sum(range(10)), repeats=3)
        >>> base > 0 and cand > 0
        True
    """
    timing = time_paired(baseline, candidate, repeats, device, inner)
    return timing.baseline_ms, timing.candidate_ms


def _ratio(baseline: float, candidate: float) -> float:
    if baseline == 0:
        return 1.0 if candidate == 0 else math.inf
    return candidate / baseline


def format_results(results: list[BenchResult]) -> str:
    """A fixed-width table of results.

    Example:
        >>> print(format_results([BenchResult("op", "torch", 10.0, 5.0, 1.0)]))  # doctest: +NORMALIZE_WHITESPACE
        operation  baseline  base  vw  unit  ratio  target
        op         torch     10.00    5.00   ms   0.50x  <= 1.00 ok
    """
    lines = [f"{'operation':<42} {'baseline':<28} {'base':>8} {'vw':>8} {'unit':>4} {'ratio':>6}  target"]
    for r in results:
        flag = "ok" if r.met else "MISSED"
        lines.append(f"{r.operation:<42} {r.baseline:<28} {r.baseline_ms:>8.2f} {r.voxweight_ms:>8.2f} {r.unit:>4} "
                     f"{r.ratio:>6.2f}x  <= {r.max_ratio:.2f} {flag}" + (f"  ({r.note})" if r.note else ""))
    return "\n".join(lines)


_PEAK_TAIL = r"""
step(); step()
def kib(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
open("/proc/self/clear_refs", "w").write("5")
resting = kib("VmRSS")
step()
print(json.dumps((kib("VmHWM") - resting) / 1024))
"""


def peak_rises_mib(setups: Sequence[str]) -> list[float] | None:
    """The resident-set rise (MiB) of one more ``step()`` in a fresh process, for each setup script.

    Each script defines ``step()`` (one forward + backward); it runs twice to warm up, then the Linux
    high-water mark is reset (``/proc/self/clear_refs``) and one more step measured against the resting
    level. glibc's ``MALLOC_MMAP_THRESHOLD_`` is fixed at 64 KiB, so every tensor gets pages of its own that go
    back when freed and the resident set follows the live tensors. None where it cannot be measured (not
    Linux, ``clear_refs`` not writable): no measurement, no row.

    Example:
        >>> rises = peak_rises_mib(["def step(): return bytearray(1 << 20)"])
        >>> rises is None or rises[0] >= 0
        True
    """
    if not Path("/proc/self/clear_refs").exists():
        return None
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 << 10)}
    try:
        outs = [subprocess.run([sys.executable, "-c", "import json\n" + setup + _PEAK_TAIL], capture_output=True,
                               text=True, check=True, env=env).stdout for setup in setups]
        return [float(json.loads(out.strip().splitlines()[-1])) for out in outs]
    except (subprocess.CalledProcessError, OSError, ValueError, IndexError):
        return None
