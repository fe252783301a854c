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


def test_roofline_formula_and_case():
    """Hand-computed roofline, and the case runs on any device when asked for by name."""
    from voxweight._bench_roofline import ROOFLINE_PASSES, roofline_ms

    # 1 GiB copied in 10 ms is 2 GiB moved; 7 passes of 64 MiB are 448 MiB: 448 / 2048 * 10 ms.
    assert roofline_ms(10.0, 1 << 30, 64 << 20) == pytest.approx(10.0 * 448 / 2048)
    assert ROOFLINE_PASSES == 7
    results = run_bench(BenchConfig(size=8, repeats=1), cases=["roofline"])
    assert [r.baseline for r in results] == ["bandwidth roofline (cpu)"]
    assert results[0].baseline_ms > 0 and results[0].voxweight_ms > 0 and "GB/s" in results[0].note


@pytest.mark.parametrize(("device", "expected"), [("cpu", ["a", "b"]), ("cuda", ["a", "b", "roofline"])])
def test_default_cases_leave_gpu_cases_out_on_cpu(monkeypatch, device, expected):
    import voxweight.bench as bench

    ran = []
    fake = {name: (lambda config, name=name: ran.append(name) or []) for name in ("a", "b", "roofline")}
    monkeypatch.setattr(bench, "_cases", lambda: fake)
    assert run_bench(BenchConfig(size=8, repeats=1, device=device)) == []
    assert ran == expected
