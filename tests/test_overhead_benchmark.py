"""`benchmarks/overhead.py` on the real sample: every part runs and prints its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import SAMPLE

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead.py"


def test_every_part_prints_its_figures(sample_data_path, run_dir):
    command = [sys.executable, str(SCRIPT), "--dataset", SAMPLE]
    command += ["--data-path", str(sample_data_path), "--repeats", "1", "--prefix-repeats", "1"]
    command += ["--length-repeats", "0", "--flop-batches", "1", "--profile"]
    command += ["--embedding_max_length=32", "--text_prior_transition_epochs=1"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=run_dir, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^train_epoch_ratio=\d+\.\d+ eval_ratio=\d+\.\d+$", out, re.MULTILINE), out
    assert re.search(r"^step_flop_ratio=\d+\.\d+$", out, re.MULTILINE), out
    assert re.search(r"^text_prior_fit_s=\d+\.\d+ text_prior_eval_share=-?\d+\.\d+$", out, re.M)
    table = re.search(
        r"^operator +bare ms +FAERec ms +extra ms$(.*?)^all operators .*$", out, re.M | re.S
    )
    assert table is not None and "aten::" in table.group(1), out
