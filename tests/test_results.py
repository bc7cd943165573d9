"""Results table layout and atomic JSON dump."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from recbole_faerec.results import format_results_table, save_results_json

RESULT = {
    "hit@5": 0.1,
    "hit@10": 0.2,
    "hit@20": 0.3,
    "ndcg@5": 0.05,
    "ndcg@10": 0.08,
    "ndcg@20": 0.09,
    "headhit@5": 0.25,
    "headhit@10": 0.5,
    "headhit@20": 0.75,
    "headndcg@5": 0.125,
    "headndcg@10": 0.25,
    "headndcg@20": 0.375,
    "TailHit@10": 0.125,
    "tailndcg@20": math.nan,
    "coverage@5": 0.5,
    "coverage@10": 0.625,
    "tailcoverage@20": 0.0625,
    "grouphit[1-4]@5": 0.9,
    "grouphit[1-4]@10": 0.01,
    "groupndcg[1-4]@10": 0.005,
    "grouphit[50+]@10": 0.4,
    "repeathit@10": math.nan,
    "newhit@10": 0.2,
    "newndcg@5": 0.05,
}


def test_table_rows():
    assert format_results_table(RESULT).splitlines() == [
        "            H@5    H@10    H@20     N@5    N@10    N@20",
        "overall  0.1000  0.2000  0.3000  0.0500  0.0800  0.0900",
        "head     0.2500  0.5000  0.7500  0.1250  0.2500  0.3750",
        "tail          -  0.1250       -       -       -     nan",
        "repeat        -     nan       -       -       -       -",
        "new           -  0.2000       -  0.0500       -       -",
        "Coverage@5/10/20 0.5000/0.6250/-  TailCoverage@5/10/20 -/-/0.0625",
        "group      H@10    N@10",
        "1-4      0.0100  0.0050",
        "50+      0.4000       -",
    ]


def test_table_other_topk_and_no_groups():
    only_overall = {"hit@10": 0.2, "ndcg@50": 0.1}
    assert format_results_table(only_overall, topk=(10, 50)).splitlines() == [
        "           H@10    H@50    N@10    N@50",
        "overall  0.2000       -       -  0.1000",
        "head          -       -       -       -",
        "tail          -       -       -       -",
        "repeat        -       -       -       -",
        "new           -       -       -       -",
        "Coverage@10/50 -/-  TailCoverage@10/50 -/-",
    ]
    groups = format_results_table({"grouphit[1-4]@5": 0.9}, topk=(5,)).splitlines()
    assert groups[-2:] == ["group       H@5     N@5", "1-4      0.9000       -"]


def test_save_results_json(tmp_path):
    path = tmp_path / "out" / "run.results.json"
    result = {"hit@10": np.float64(0.25), "tailhit@10": math.nan, "coverage@5": np.float32(0.5)}
    written = save_results_json(
        result, path, model="FAERec", epochs=np.int64(3), best_valid_result={"hit@10": 0.5}
    )
    assert written == path
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text
    assert json.loads(text) == {
        "metrics": {"hit@10": 0.25, "tailhit@10": None, "coverage@5": 0.5},
        "model": "FAERec",
        "epochs": 3,
        "best_valid_result": {"hit@10": 0.5},
    }
    assert os.listdir(path.parent) == ["run.results.json"]
    save_results_json({"hit@10": 0.5}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"metrics": {"hit@10": 0.5}}
    assert os.listdir(path.parent) == ["run.results.json"]


def test_save_results_json_failure_keeps_old_file(tmp_path):
    path = tmp_path / "r.json"
    save_results_json({"hit@10": 0.5}, path)
    with pytest.raises(TypeError):
        save_results_json({"hit@10": object()}, path)
    with pytest.raises(ValueError):
        save_results_json({}, path, metrics={})
    assert json.loads(path.read_text(encoding="utf-8")) == {"metrics": {"hit@10": 0.5}}
    assert os.listdir(tmp_path) == ["r.json"]
