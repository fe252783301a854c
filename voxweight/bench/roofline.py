"""Benchmark case: the fused loss against the memory-bandwidth roofline of the traffic it must move.

A forward + backward of the voxel-weighted BCE through autograd must at least read ``x``, ``t`` and
``w`` in the forward pass (3 voxel-sized passes) and write the gradient in the backward pass (1), which
needs something of every voxel: either ``x``, ``t`` and ``w`` read again (3) or a voxel-sized result of
the forward pass, written there and read back (2). So ``ROOFLINE_PASSES = 3 + 1 + min(3, 2) = 6``, what
``fused=True`` moves (forward: loss and gradient in one kernel; backward: the gradient scaled in place).
The bandwidth is measured in the same run by a large device copy (a copy of ``B``
bytes moves ``2 B``), so the baseline is the time those passes take at copy speed. The target, a ratio
of at most ``1 / 0.7``, is "within 70% of the roofline". It is meant for GPUs, where the loss is
bandwidth-bound; on a CPU the transcendental functions make it compute-bound.
"""

from __future__ import annotations

import time

import torch

from voxweight.bench.harness import BenchConfig, BenchResult, time_pair
from voxweight.bench.loss import loss_inputs
from voxweight.losses import voxel_weighted_bce

ROOFLINE_PASSES = 6  # forward reads x, t, w and writes the gradient; backward reads and rewrites it
MIN_COPY_BYTES = 256 << 20  # large enough to stream from memory rather than cache


def roofline_ms(copy_ms: float, copy_bytes: int, tensor_bytes: int, passes: int = ROOFLINE_PASSES) -> float:
    """Milliseconds that ``passes`` voxel-sized passes of ``tensor_bytes`` take at the measured copy speed.

    Formula: ``passes * tensor_bytes / (2 * copy_bytes / copy_ms)`` (a copy reads and writes its bytes).

    Example:
        >>> roofline_ms(copy_ms=2.0, copy_bytes=1000, tensor_bytes=100, passes=6)
        0.6
    """
    return passes * tensor_bytes * copy_ms / (2 * copy_bytes)


def bench_roofline(config: BenchConfig) -> list[BenchResult]:
    """``fused=True`` loss forward + backward on ``[2, 1, size^3]`` vs its bandwidth roofline on ``config.device``."""
    x, t, w = loss_inputs(config)
    tensor_bytes = x.numel() * x.element_size()
    copy_bytes = max(MIN_COPY_BYTES, 4 * tensor_bytes)
    src = torch.empty(copy_bytes // 4, dtype=torch.float32, device=x.device).fill_(1.0)
    dst = torch.empty_like(src)

    def fused() -> None:
        xi = x.detach().requires_grad_()
        voxel_weighted_bce(xi, t, w, fused=True).backward()

    start = time.perf_counter()
    fused()  # compilation happens here, outside the timed repeats
    compile_s = time.perf_counter() - start
    copy_ms, loss_ms = time_pair(lambda: dst.copy_(src), fused, 3 * config.repeats, config.device, inner=4)
    bandwidth = 2 * copy_bytes / copy_ms / 1e6  # GB/s
    ideal = roofline_ms(copy_ms, copy_bytes, tensor_bytes)
    note = (f"copy {bandwidth:.0f} GB/s, {ROOFLINE_PASSES} passes of {tensor_bytes >> 20} MiB; "
            f"{ideal / loss_ms:.0%} of roofline; compile {compile_s:.1f} s")
    return [BenchResult(f"loss fwd+bwd [2,1,{config.size}^3], fused=True", f"bandwidth roofline ({config.device})",
                        ideal, loss_ms, 1 / 0.7, note)]
