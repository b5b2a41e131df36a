"""The load benchmark (benchmarks/serve_load.py) still runs: 3 readers for 2 s on SQLite.

Marked slow: starting the server and its worker takes longer than the default suite's
10-second allowance for one test on a loaded CI machine (about 20 s here, with the tiny run made by the session fixture).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


@pytest.mark.slow
def test_load_benchmark_smoke(bundle, tmp_path: Path):
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--db", "sqlite", "--duration", "2", "--readers", "3", "--workers", "1"]
    result = module.main([*args, "--bundle", str(bundle("nifti")), "--out", str(tmp_path)])
    summary = result["summary"]
    assert summary["requests"] > 0 and summary["errors"] == 0, summary
    assert set(summary["endpoints"]) == {label for label, _ in module.endpoints("x")}
    saved = json.loads((tmp_path / "serve_load.json").read_text())
    assert saved["summary"] == summary and (tmp_path / "serve_load.md").is_file()
