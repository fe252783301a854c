"""voxweight bench: the measurement harness and the command (tiny sizes; no timing assertions)."""

from __future__ import annotations

import json

import pytest

from voxweight.bench import BenchConfig, BenchResult, format_results, run_bench, time_pair
from voxweight.cli import main


def test_time_pair_runs_each_callable_repeats_plus_warmup():
    calls = {"a": 0, "b": 0}

    def a():
        calls["a"] += 1

    def b():
        calls["b"] += 1

    base, cand = time_pair(a, b, repeats=4)
    assert calls == {"a": 5, "b": 5}
    assert base >= 0 and cand >= 0


def test_result_ratio_and_target():
    r = BenchResult("op", "base", 10.0, 4.0, 0.5)
    assert r.ratio == pytest.approx(0.4) and r.met
    assert not BenchResult("op", "base", 10.0, 6.0, 0.5).met
    assert BenchResult("op", "base", 0.0, 0.0, 1.0).ratio == 1.0
    assert not BenchResult("op", "base", 0.0, 2.0, 1.0).met
    assert r.to_dict()["ratio"] == pytest.approx(0.4)
    assert "0.40x" in format_results([r])


@pytest.mark.slow
def test_loss_case_and_cli_json(tmp_path, capsys):
    results = run_bench(BenchConfig(size=16, repeats=1), cases=["loss"])
    assert {r.operation.split(",")[-1].strip() for r in results} >= {"voxel map", "fused=True"}
    assert all(r.baseline_ms > 0 and r.voxweight_ms > 0 for r in results)
    out = tmp_path / "bench.json"
    assert main(["bench", "--size", "16", "--repeats", "1", "--cases", "loss", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["config"]["size"] == 16
    assert len(payload["results"]) == len(results)
    assert "ratio" in capsys.readouterr().out


def test_unknown_case_and_bad_size():
    with pytest.raises(ValueError, match=r"cases: expected one of .*did you mean 'loss'"):
        run_bench(BenchConfig(size=8, repeats=1), cases=["los"])
    assert main(["bench", "--size", "0"]) == 1


@pytest.mark.slow
def test_memory_case_reports_mib_per_variant():
    results = run_bench(BenchConfig(size=64, repeats=1), cases=["memory"])
    assert [r.operation.split(", ")[-1] for r in results] == ["eager", "fused=True"]
    assert all(r.unit == "MiB" and r.baseline_ms >= 0 and r.voxweight_ms >= 0 for r in results)
    assert "MiB" in format_results(results)
    eager, fused = results
    one_tensor = 2 * 64**3 * 4 / 2**20
    # Properties (the resident set follows live tensors): torch's eager kernel keeps a temporary beside the
    # gradient, voxweight's eager path is torch's kernel, the fused kernel writes little more than the gradient.
    assert eager.baseline_ms >= 1.5 * one_tensor and eager.voxweight_ms <= 1.1 * eager.baseline_ms
    assert fused.voxweight_ms < 0.75 * fused.baseline_ms


def test_roofline_formula_and_case():
    """Hand-computed roofline, and the case runs on any device when asked for by name."""
    from voxweight.bench.roofline import ROOFLINE_PASSES, roofline_ms

    # 1 GiB copied in 10 ms is 2 GiB moved; 6 passes of 64 MiB are 384 MiB: 384 / 2048 * 10 ms.
    assert roofline_ms(10.0, 1 << 30, 64 << 20) == pytest.approx(10.0 * 384 / 2048)
    assert ROOFLINE_PASSES == 6  # 3 reads + the gradient written + min(3 re-reads, 2 for a saved result)
    results = run_bench(BenchConfig(size=8, repeats=1), cases=["roofline"])
    assert [r.baseline for r in results] == ["bandwidth roofline (cpu)"]
    assert results[0].baseline_ms > 0 and results[0].voxweight_ms > 0 and "GB/s" in results[0].note


@pytest.mark.parametrize(("device", "expected"), [("cpu", ["a", "b"]), ("cuda", ["a", "b", "roofline"])])
def test_default_cases_leave_gpu_cases_out_on_cpu(monkeypatch, device, expected):
    import voxweight.bench.registry as registry

    ran = []
    fake = {name: (lambda config, name=name: ran.append(name) or []) for name in ("a", "b", "roofline")}
    monkeypatch.setattr(registry, "CASES", fake)
    assert run_bench(BenchConfig(size=8, repeats=1, device=device)) == []
    assert ran == expected


def test_paired_ratio_is_the_median_of_per_pair_ratios(monkeypatch):
    """Hand-computed: a machine that halves its speed between pairs keeps the ratio of each pair (0.5)."""
    import voxweight.bench.harness as bench

    clock = iter([0.0, 2.0, 2.0, 3.0,  # pair 0 (baseline first): baseline 2 s, candidate 1 s
                  3.0, 5.0, 5.0, 9.0,  # pair 1 (candidate first): candidate 2 s, baseline 4 s
                  9.0, 17.0, 17.0, 21.0])  # pair 2 (baseline first): baseline 8 s, candidate 4 s
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    timing = bench.time_paired(lambda: None, lambda: None, repeats=3)
    assert (timing.baseline_ms, timing.candidate_ms) == (4000.0, 2000.0)  # medians of [2, 4, 8] and [1, 2, 4]
    assert timing.ratio == 0.5
    result = BenchResult.timed("op", "base", timing, 0.6)
    assert result.ratio == 0.5 and result.met and result.to_dict()["paired_ratio"] == 0.5
    assert BenchResult("op", "base", 10.0, 4.0, 0.5, paired_ratio=0.7).ratio == 0.7  # the paired one wins
