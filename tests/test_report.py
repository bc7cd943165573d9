"""The paper-style report: formatting on hand-made results, plumbing and one real end-to-end run."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import matplotlib.image
import pytest
import torch
from conftest import SAMPLE

from recbole_faerec.report import (
    ABLATIONS,
    format_report_markdown,
    main,
    relative_improvement,
    run_report,
)
from recbole_faerec.report import runner as report_runner

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")


def _result(scale: float, empty_group: bool = False) -> dict:
    return {
        "hit@10": 0.2 * scale,
        "ndcg@10": 0.1 * scale,
        "tailhit@10": 0.04 * scale,
        "tailndcg@10": 0.02 * scale,
        "headhit@10": 0.3 * scale,
        "headndcg@10": 0.15 * scale,
        "coverage@10": 0.5 * scale,
        "tailcoverage@10": 0.25 * scale,
        "grouphit[1-4]@10": NAN if empty_group else 0.01 * scale,
        "grouphit[5+]@10": 0.4 * scale,
        "groupndcg[1-4]@10": NAN if empty_group else 0.005 * scale,
    }


def _assert_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width >= 300 and height >= 200


def test_relative_improvement():
    assert relative_improvement(0.2, 0.3) == pytest.approx(50.0)
    assert relative_improvement(0.4, 0.3) == pytest.approx(-25.0)
    for base, new in ((0.0, 0.1), (NAN, 0.1), (0.1, NAN), (None, 0.1), (0.1, None)):
        assert relative_improvement(base, new) is None


def test_markdown_tables_from_hand_made_results():
    report = {
        "k": 10,
        "dataset": "toy",
        "seed": 3,
        "command": "python -m recbole_faerec.report --dataset toy --model SASRec",
        "metrics": {
            "SASRec": {
                "base": _result(1.0, empty_group=True),
                "faerec": _result(1.5),
                "w/o AGF": {**_result(1.2), "grouphit[5+]@10": None},
            }
        },
        "wall_time_s": {"SASRec": {"base": 1.5, "faerec": 2.5, "w/o AGF": 2.0}},
    }
    text = format_report_markdown(report)
    lines = text.splitlines()
    assert (
        "| Backbone | Model | H@10 | N@10 | Tail H@10 | Tail N@10 | Head H@10 | Head N@10 |" in text
    )
    assert "| SASRec | SASRec | 0.2000 | 0.1000 | 0.0400 | 0.0200 | 0.3000 | 0.1500 |" in lines
    assert "| SASRec | FAERec | 0.3000 | 0.1500 | 0.0600 | 0.0300 | 0.4500 | 0.2250 |" in lines
    assert (
        "| SASRec | Improv. | +50.00% | +50.00% | +50.00% | +50.00% | +50.00% | +50.00% |" in lines
    )
    assert "| Backbone | Model | Coverage@10 | TailCoverage@10 |" in text
    assert "| SASRec | Improv. | +50.00% | +50.00% |" in lines
    # Per-group H@10: the empty base group and its improvement are "-", like a missing value.
    assert "| Backbone | Model | 1-4 | 5+ |" in text
    assert "| SASRec | SASRec | - | 0.4000 |" in lines
    assert "| SASRec | FAERec | 0.0150 | 0.6000 |" in lines
    assert "| SASRec | Improv. | - | +50.00% |" in lines
    assert "| SASRec | FAERec w/o AGF | 0.0120 | - |" in lines
    assert "| SASRec | SASRec | 1.5 |" in lines and report["command"] in text
    assert "(repeat)" not in text  # no repeat/new metrics in these results


def test_markdown_repeat_and_new_targets_table():
    base = {**_result(1.0), "repeathit@10": NAN, "newhit@10": 0.2, "newndcg@10": 0.1}
    faerec = {**_result(1.0), "repeathit@10": NAN, "newhit@10": 0.3, "newndcg@10": 0.1}
    report = {"k": 10, "metrics": {"SASRec": {"base": base, "faerec": faerec}}}
    lines = format_report_markdown(report).splitlines()
    assert "| Backbone | Model | Repeat H@10 | Repeat N@10 | New H@10 | New N@10 |" in lines
    assert "| SASRec | FAERec | - | - | 0.3000 | 0.1000 |" in lines
    assert "| SASRec | Improv. | - | - | +50.00% | +0.00% |" in lines


class _FakeFusion:
    num_items = 60

    def views(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        return torch.randn(len(ids), 8, generator=gen), torch.randn(len(ids), 8, generator=gen) + 3


def test_backbones_and_ablations_plumbing(tmp_path, monkeypatch):
    calls = []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base):
        calls.append((backbone, dict(config_dict), base))
        scale = 1.0 if base else 1.1
        return {"test_result": _result(scale), "model_file": f"{backbone}-{len(calls)}.pth"}

    def fake_load(model_file):
        model = SimpleNamespace(
            fusion=_FakeFusion(), item_popularity=torch.arange(60.0), eval=lambda: None
        )
        config = {"seed": 5, "topk": [5, 10], "head_ratio": 0.2, "epochs": 1, "fusion": "gate"}
        return config, model, None, None, None, None

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", fake_load)
    out = tmp_path / "multi"
    report = run_report(
        "toy", ["SASRec", "GRU4Rec"], out, config_dict={"epochs": 1}, ablations=True, tsne_items=40
    )
    assert len(calls) == 2 * (2 + len(ABLATIONS))
    assert [base for _, _, base in calls[:2]] == [True, False]
    for (_, config_dict, _), switches in zip(calls[2:7], ABLATIONS.values(), strict=True):
        assert config_dict == {"epochs": 1, **switches}
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["metrics"]) == ["SASRec", "GRU4Rec"]
    assert list(saved["metrics"]["GRU4Rec"]) == ["base", "faerec", *ABLATIONS]
    assert saved["metrics"]["SASRec"]["base"]["grouphit[1-4]@10"] == pytest.approx(0.01)
    assert saved["seed"] == 5 and saved["k"] == 10 and report["settings"]["SASRec"]["epochs"] == 1
    assert "--ablations" in saved["command"] and "--epochs=1" in saved["command"]
    text = (out / "results.md").read_text()
    assert "| GRU4Rec | FAERec w/o PG |" in text
    assert text.count("| GRU4Rec | Improv. |") == 3
    _assert_png(out / "groups.png")
    _assert_png(out / "tsne.png")


def test_an_interrupted_report_resumes_without_rerunning_finished_runs(tmp_path, monkeypatch):
    calls = []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base):
        calls.append(base)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the FAERec run
        model_file = tmp_path / f"{backbone}-{len(calls)}.pth"
        model_file.touch()
        return {"test_result": _result(1.0 if base else 1.1), "model_file": str(model_file)}

    def fake_load(model_file):
        model = SimpleNamespace(
            fusion=_FakeFusion(), item_popularity=torch.arange(60.0), eval=lambda: None
        )
        return {"seed": 5, "topk": [10], "head_ratio": 0.2}, model, None, None, None, None

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", fake_load)
    out = tmp_path / "report"
    with pytest.raises(KeyboardInterrupt):
        run_report("toy", ["SASRec"], out, tsne_items=40)
    partial = json.loads((out / "results.json").read_text())
    assert partial["complete"] is False and list(partial["metrics"]["SASRec"]) == ["base"]

    run_report("toy", ["SASRec"], out, tsne_items=40, resume=True)
    assert calls == [True, False, False]  # the bare run was kept, only FAERec ran again
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is True and list(saved["metrics"]["SASRec"]) == ["base", "faerec"]
    assert saved["model_files"]["SASRec"]["base"] == str(tmp_path / "SASRec-1.pth")

    run_report("toy", ["SASRec"], out, tsne_items=40, resume=True)
    assert len(calls) == 3  # nothing left to run
    run_report("toy", ["SASRec"], out, tsne_items=40, config_dict={"epochs": 2}, resume=True)
    assert len(calls) == 5  # another command: nothing is kept


def test_bad_input_prints_an_error_line_and_exits_2(sample_data_path, run_dir, capsys):
    argv = ["--dataset", SAMPLE, "--model", "SASRek", f"--data_path={sample_data_path}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: backbone: unknown model 'SASRek'")
    assert main(["--dataset", SAMPLE, "--model", "SASRec", "--epochs"]) == 2
    assert "unrecognised argument '--epochs'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="SASRek"):
        main([*argv, "--debug"])


def test_report_end_to_end_on_the_sample(fast_config, run_dir):
    out = run_dir / "report"
    overrides = [f"--{key}={value}" for key, value in fast_config.items()]
    argv = ["--dataset", SAMPLE, "--model", "SASRec", "--out", str(out), "--tsne-items", "150"]
    assert main(argv + overrides) == 0

    saved = json.loads((out / "results.json").read_text())
    run = saved["metrics"]["SASRec"]
    for variant in ("base", "faerec"):
        for key in ("hit@10", "ndcg@10", "coverage@10"):
            assert math.isfinite(run[variant][key])
        assert saved["wall_time_s"]["SASRec"][variant] > 0
    assert saved["seed"] == fast_config["seed"] and saved["settings"]["SASRec"]["epochs"] == 1
    protocol = saved["protocol"]
    assert protocol["repeatable"] is True and protocol["MAX_ITEM_LIST_LENGTH"] == 10
    assert protocol["loss_type"] == "CE" and protocol["train_mode"] == "prefix"
    assert saved["machine"]["cpu_count"] >= 1 and "recbole" in saved["machine"]
    assert saved["command"].startswith("python -m recbole_faerec.report --dataset " + SAMPLE)

    text = (out / "results.md").read_text()
    assert "`repeatable: True`, `MAX_ITEM_LIST_LENGTH: 10`" in text
    assert "| Backbone | Model | H@10 | N@10 | Tail H@10 | Tail N@10 |" in text
    assert "| SASRec | Improv. |" in text and "Coverage@10" in text
    _assert_png(out / "groups.png")
    _assert_png(out / "tsne.png")
