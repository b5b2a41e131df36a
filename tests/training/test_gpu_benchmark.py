"""benchmarks/gpu/throughput.py, the prepared GPU check, in its CPU --tiny mode (seconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "throughput.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_run_writes_results_for_each_mode(tmp_path: Path):
    bench = _load()
    out = tmp_path / "results.json"
    args = ["--device", "cpu", "--tiny", "--cases", "wgan_gp_tiny", "--no-compile"]
    assert bench.main([*args, "--warmup", "1", "--steps", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"date", "machine", "torch", "cuda", "command", "gpus"} <= result.keys()
    rows = result["rows"]
    assert [(r["case"], r["mode"]) for r in rows] == [
        ("wgan_gp_tiny", "off"),
        ("wgan_gp_tiny", "on"),
    ]
    for row in rows:
        assert row["status"] == "ok" and row["steps_measured"] == 2
        assert row["generator_steps_per_s"] > 0 and row["critic_steps_per_s"] > 0
    assert rows[0]["fast_path"]["autocast"] == "off" and rows[1]["fast_path"]["channels_last"]
    assert "| wgan_gp_tiny | on | 1 | 4 |" in out.with_suffix(".md").read_text()


def test_plan_puts_torchrun_before_compile_when_several_gpus():
    bench = _load()
    args = type("A", (), {"tiny": False, "cases": ["wgan_gp_b64"], "compile": True})()
    assert bench._plan(args, 4) == [
        ("wgan_gp_b64", "off", 1),
        ("wgan_gp_b64", "on", 1),
        ("wgan_gp_b64", "on", 4),
        ("wgan_gp_b64", "compile", 1),
    ]
    assert ("wgan_gp_b64", "on", 1) in bench._plan(args, 1)
    assert all(world == 1 for *_, world in bench._plan(args, 1))
