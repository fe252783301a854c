"""Benchmark case: peak memory of one loss forward + backward, torch eager vs ``fused=True``.

Each variant runs in a fresh Python process (so allocator state and compile caches do not leak between
them), warms up, resets the resident-set high-water mark (Linux ``/proc/self/clear_refs``) and reports
how far one more forward + backward raises it above the resting level. The processes run with glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB: every tensor then gets pages of its own that go back to the
system when it is freed, so the resident set follows the live tensors (otherwise memory freed by the
warm-up steps may or may not be reused, and the rise reads anywhere from 0 to the true peak).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from voxweight.bench.harness import BenchConfig, BenchResult

_SCRIPT = r"""
import json, sys, torch, torch.nn.functional as F
import voxweight
from voxweight.bench.harness import BenchConfig
from voxweight.bench.loss import loss_inputs
torch.set_num_threads({threads})
x, t, w = loss_inputs(BenchConfig(size={size}))
def step():
    xi = x.detach().requires_grad_()
    if "{variant}" == "torch":
        loss = F.binary_cross_entropy_with_logits(xi, t, weight=w)
    else:
        loss = voxweight.voxel_weighted_bce(xi, t, w, fused="{variant}" == "fused")
    loss.backward()
    return xi.grad
step(); step()
def kib(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
open("/proc/self/clear_refs", "w").write("5")
resting = kib("VmRSS")
step()
print(json.dumps((kib("VmHWM") - resting) / 1024))
"""


def _peak_mib(variant: str, config: BenchConfig) -> float:
    code = _SCRIPT.format(threads=config.threads, size=config.size, variant=variant)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 << 10)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_memory(config: BenchConfig) -> list[BenchResult]:
    """Peak-memory rise (MiB) of one forward + backward on ``[2, 1, size^3]``: eager and fused vs torch."""
    if not Path("/proc/self/clear_refs").exists():
        return []  # the high-water-mark reset is Linux-only
    shape = f"[2,1,{config.size}^3]"
    note = f"one tensor of this shape is {2 * config.size**3 * 4 / 2**20:.1f} MiB"
    try:
        torch_mib, eager_mib, fused_mib = (_peak_mib(v, config) for v in ("torch", "eager", "fused"))
    except (subprocess.CalledProcessError, OSError, ValueError, StopIteration):
        return []  # e.g. /proc/self/clear_refs not writable in this container: no measurement, no row
    return [
        # Eagerly voxweight runs torch's kernel: the same peak, plus a few small tensors (checks, alignment).
        BenchResult(f"loss peak memory {shape}, eager", "torch eager, same map", torch_mib, eager_mib, 1.02, note,
                    unit="MiB"),
        BenchResult(f"loss peak memory {shape}, fused=True", "torch eager, same map", torch_mib, fused_mib, 1.0,
                    note, unit="MiB"),
    ]
