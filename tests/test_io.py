"""Atomic writes, strict JSON and the ``--key=value`` override parser."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from recbole_faerec.io import atomic_open, parse_overrides, write_json


def test_parse_overrides_reads_literals():
    assert parse_overrides(["--epochs=5", "--alpha=0.3", "--topk=[5, 10]", "--x=true"]) == {
        "epochs": 5,
        "alpha": 0.3,
        "topk": [5, 10],
        "x": True,
    }
    with pytest.raises(ValueError, match="--key=value"):
        parse_overrides(["positional"])


def test_parse_overrides_keeps_text_for_recbole():
    assert parse_overrides(["--epochs=5", "--loss_type=BCE"], literal=False) == {
        "epochs": "5",
        "loss_type": "BCE",
    }
    for bad in ("--epochs", "--=5", "epochs=5"):
        with pytest.raises(ValueError, match="--key=value"):
            parse_overrides([bad], literal=False)


def test_atomic_open_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "nested" / "out.txt"
    with atomic_open(target) as handle:
        handle.write("old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half")
        raise RuntimeError
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_write_json_is_strict(tmp_path):
    path = write_json(tmp_path / "r.json", {"a": math.nan, "b": np.float32(0.5), 3: (1, np.inf)})
    assert json.loads(path.read_text()) == {"a": None, "b": 0.5, "3": [1, None]}
    assert path.read_text().endswith("}\n")
