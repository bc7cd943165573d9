"""`benchmarks/scaling.py` at its smallest size: it runs, and fails when a worker does."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling.py"


def test_the_smallest_catalog_measures_both_models(tmp_path):
    command = [sys.executable, str(SCRIPT), "--items", "500", "--llm-dims", "32"]
    command += ["--steps", "1", "--users", "32", "--out", str(tmp_path / "scaling.png")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ratio = re.search(r"^max_step_ratio=(\d+\.\d+)$", done.stdout, re.MULTILINE)
    assert ratio is not None and float(ratio.group(1)) > 0, done.stdout
    assert "items=500 llm_dim=32 step_ratio=" in done.stdout
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_a_failed_worker_fails_the_benchmark(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("scaling", SCRIPT)
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    monkeypatch.setattr(scaling, "_run_worker", lambda *_, **__: {"error": "boom"})
    monkeypatch.setattr(sys, "argv", ["scaling.py", "--items", "10", "--out", str(tmp_path / "p")])
    monkeypatch.setattr(scaling, "_plot", lambda rows, out: None)
    with pytest.raises(SystemExit) as stop:
        scaling.main()
    assert stop.value.code == 1
