"""Benchmark case: peak memory of one loss forward + backward, torch eager vs ``fused=True``.

Each variant runs in a fresh Python process (so allocator state and compile caches do not leak between
them), warms up, resets the resident-set high-water mark (Linux ``/proc/self/clear_refs``) and reports
how far one more forward + backward raises it above the resting level. The processes run with glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB: every tensor then gets pages of its own that go back to the
system when it is freed, so the resident set follows the live tensors (otherwise memory freed by the
warm-up steps may or may not be reused, and the rise reads anywhere from 0 to the true peak).
"""

from __future__ import annotations

from voxweight.bench.harness import BenchConfig, BenchResult, peak_rises_mib

_SCRIPT = r"""
import torch, torch.nn.functional as F
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
"""


def bench_memory(config: BenchConfig) -> list[BenchResult]:
    """Peak-memory rise (MiB) of one forward + backward on ``[2, 1, size^3]``: eager and fused vs torch."""
    shape = f"[2,1,{config.size}^3]"
    note = f"one tensor of this shape is {2 * config.size**3 * 4 / 2**20:.1f} MiB"
    rises = peak_rises_mib([_SCRIPT.format(threads=config.threads, size=config.size, variant=v)
                            for v in ("torch", "eager", "fused")])
    if rises is None:
        return []  # Linux only, and clear_refs must be writable: no measurement, no row
    torch_mib, eager_mib, fused_mib = rises
    return [
        # Eagerly voxweight runs torch's kernel: the same peak, plus a few small tensors (checks, alignment).
        BenchResult(f"loss peak memory {shape}, eager", "torch eager, same map", torch_mib, eager_mib, 1.02, note,
                    unit="MiB"),
        BenchResult(f"loss peak memory {shape}, fused=True", "torch eager, same map", torch_mib, fused_mib, 1.0,
                    note, unit="MiB"),
    ]
