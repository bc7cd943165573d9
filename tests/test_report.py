"""The paper-style report: formatting on hand-made results, plumbing and one real end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image
import pytest
import torch
from conftest import SAMPLE

from recbole_faerec.report import (
    ABLATIONS,
    build_parser,
    format_report_markdown,
    main,
    parse_seeds,
    relative_improvement,
    run_report,
    run_seed_reports,
    summarise_seeds,
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
    # Table 2 holds the bare backbone and FAERec; the ablation is in Table 3, against FAERec.
    table2 = text.split("## Overall")[1].split("## ")[0]
    assert "w/o AGF" not in table2
    assert "| Backbone | Model | H@10 | N@10 | Tail H@10 | Tail N@10 | N@10 vs FAERec |" in text
    assert "| SASRec | FAERec | 0.3000 | 0.1500 | 0.0600 | 0.0300 | - | - |" in lines
    assert (
        "| SASRec | FAERec w/o AGF | 0.2400 | 0.1200 | 0.0480 | 0.0240 | -20.00% | -20.00% |"
        in lines
    )
    assert "| SASRec | SASRec | 1.5 |" in lines and report["command"] in text
    assert "(repeat)" not in text  # no repeat/new metrics in these results


def test_no_ablation_table_without_ablations():
    report = {"k": 10, "metrics": {"SASRec": {"base": _result(1.0), "faerec": _result(1.5)}}}
    assert "Table 3" not in format_report_markdown(report)


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


def _fake_loader(config: dict):
    """A stand-in for ``load_data_and_model``: ``config`` and a model with a fake fusion."""

    def fake_load(model_file):
        model = SimpleNamespace(
            fusion=_FakeFusion(), item_popularity=torch.arange(60.0), eval=lambda: None
        )
        return dict(config), model, None, None, None, None

    return fake_load


def test_backbones_and_ablations_plumbing(tmp_path, monkeypatch):
    calls = []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base):
        calls.append((backbone, dict(config_dict), base))
        scale = 1.0 if base else 1.1
        prior = None
        if config_dict["text_prior"]:  # the prior's row scales the metrics by 1.2 more
            prior = {"weight": 4.0, "valid_scores": {"0": 0.1, "4": 0.2}}
            prior["test_result_without"] = _result(scale)
        return {
            "test_result": _result(scale * 1.2 if prior else scale),
            "best_valid_result": {"ndcg@10": 0.1},
            "text_prior": prior,
            "model_file": f"{backbone}-{len(calls)}.pth",
        }

    fake_load = _fake_loader(
        {"seed": 5, "topk": [5, 10], "head_ratio": 0.2, "epochs": 1, "fusion": "gate"}
    )

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", fake_load)
    out = tmp_path / "multi"
    report = run_report(
        "toy", ["SASRec", "GRU4Rec"], out, config_dict={"epochs": 1}, ablations=True, tsne_items=40
    )
    assert len(calls) == 2 * (2 + len(ABLATIONS))
    assert [base for _, _, base in calls[:2]] == [True, False]
    assert [config_dict for _, config_dict, _ in calls[:2]] == [
        {"epochs": 1, "text_prior": True}
    ] * 2
    for (_, config_dict, _), switches in zip(calls[2:7], ABLATIONS.values(), strict=True):
        assert config_dict == {"epochs": 1, **switches, "text_prior": False}
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["metrics"]) == ["SASRec", "GRU4Rec"]
    rows = ["base", "base+prior", "faerec", "faerec+prior", *ABLATIONS]
    assert list(saved["metrics"]["GRU4Rec"]) == rows == saved["variants"]
    assert saved["metrics"]["SASRec"]["base"]["grouphit[1-4]@10"] == pytest.approx(0.01)
    assert saved["metrics"]["SASRec"]["base+prior"]["grouphit[1-4]@10"] == pytest.approx(0.012)
    assert saved["metrics"]["SASRec"]["faerec+prior"]["hit@10"] == pytest.approx(
        1.32 * saved["metrics"]["SASRec"]["base"]["hit@10"]
    )
    record = saved["validation"]["SASRec"]["faerec"]
    assert record == {
        "ndcg@10": 0.1,
        "text_prior_weight": 4.0,
        "text_prior_valid_scores": {"0": 0.1, "4": 0.2},
    }
    assert saved["seed"] == 5 and saved["k"] == 10 and report["settings"]["SASRec"]["epochs"] == 1
    assert "--ablations" in saved["command"] and "--epochs=1" in saved["command"]
    text = (out / "results.md").read_text()
    assert "| GRU4Rec | FAERec w/o PG |" in text
    assert (
        "| GRU4Rec | GRU4Rec + text prior |" in text and "| GRU4Rec | FAERec + text prior |" in text
    )
    assert text.count("| GRU4Rec | Improv. |") == 3 * 3  # after each attributed row, 3 tables
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
        return {
            "test_result": _result(1.0 if base else 1.1),
            "best_valid_result": {"ndcg@10": 0.1},
            "model_file": str(model_file),
        }

    fake_load = _fake_loader({"seed": 5, "topk": [10], "head_ratio": 0.2})

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


def test_a_report_resumes_on_a_machine_without_its_model_files(tmp_path, monkeypatch):
    calls, loads = [], []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base):
        calls.append(base)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the first ablation
        model_file = tmp_path / f"{backbone}-{len(calls)}.pth"
        model_file.touch()
        return {
            "test_result": _result(1.0 if base else 1.1),
            "best_valid_result": {"ndcg@10": 0.1},
            "model_file": str(model_file),
        }

    fake_load = _fake_loader({"seed": 5, "topk": [10], "head_ratio": 0.2})

    def counting_load(model_file):
        loads.append(Path(model_file).name)
        return fake_load(model_file)

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", counting_load)
    out = tmp_path / "report"
    with pytest.raises(KeyboardInterrupt):
        run_report("toy", ["SASRec"], out, tsne_items=40, ablations=True)
    assert loads == ["SASRec-2.pth"]  # the FAERec run's views were sampled as it finished
    partial = json.loads((out / "results.json").read_text())
    assert partial["settings"]["SASRec"]["seed"] == 5
    for model_file in tmp_path.glob("*.pth"):
        model_file.unlink()  # a new machine: the checkpoints are gone, the report folder is not

    run_report("toy", ["SASRec"], out, tsne_items=40, ablations=True, resume=True)
    assert calls[:3] == [True, False, False] and len(calls) == 3 + len(ABLATIONS)
    assert loads == ["SASRec-2.pth"]  # the t-SNE came from the saved views
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is True and saved["seed"] == 5
    assert list(saved["metrics"]["SASRec"])[:2] == ["base", "faerec"]
    _assert_png(out / "tsne.png")


def test_rescoring_a_report_refits_the_prior_rows_and_trains_nothing(tmp_path, monkeypatch):
    def run_with_prior(model_file, weight: float, gain: float) -> dict:
        scale = 1.0 if "base" in str(model_file) else 1.1
        return {
            "test_result": _result(scale * gain),
            "best_valid_result": {"ndcg@10": 0.1},
            "text_prior": {
                "weight": weight,
                "valid_scores": {"0": 0.1, f"{weight:g}": 0.2},
                "test_result_without": _result(scale),
            },
            "model_file": str(model_file),
        }

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base):
        model_file = tmp_path / f"{backbone}-{'base' if base else 'faerec'}.pth"
        model_file.touch()
        return run_with_prior(model_file, 4.0, 1.2)

    rescored = []

    def fake_rescore(model_file):
        rescored.append(Path(model_file).name)
        return run_with_prior(model_file, 8.0, 1.5)

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "rescore_saved_run", fake_rescore)
    monkeypatch.setattr(
        report_runner,
        "load_data_and_model",
        _fake_loader({"seed": 5, "topk": [10], "head_ratio": 0.2}),
    )
    out = tmp_path / "report"
    run_report("toy", ["SASRec"], out, tsne_items=40)
    walls = json.loads((out / "results.json").read_text())["wall_time_s"]
    monkeypatch.setattr(report_runner, "run_recbole_faerec", _no_training)
    run_report("toy", ["SASRec"], out, tsne_items=40, rescore=True)
    assert rescored == ["SASRec-base.pth", "SASRec-faerec.pth"]
    saved = json.loads((out / "results.json").read_text())
    metrics = saved["metrics"]["SASRec"]
    assert metrics["base"]["hit@10"] == pytest.approx(_result(1.0)["hit@10"])
    assert metrics["base+prior"]["hit@10"] == pytest.approx(_result(1.5)["hit@10"])
    assert metrics["faerec+prior"]["hit@10"] == pytest.approx(_result(1.65)["hit@10"])
    assert saved["validation"]["SASRec"]["faerec"]["text_prior_weight"] == 8.0
    assert saved["wall_time_s"] == walls  # the training times stay those of the training runs


def _no_training(*_, **__):
    raise AssertionError("a rescored report trains nothing")


def test_spread_over_seeds_by_hand():
    reports = {
        1: {"metrics": {"SASRec": {"base": {"hit@10": 0.1, "tailhit@10": 0.02},
                                   "faerec": {"hit@10": 0.12, "tailhit@10": 0.05}}}},
        2: {"metrics": {"SASRec": {"base": {"hit@10": 0.3, "tailhit@10": 0.04},
                                   "faerec": {"hit@10": 0.24, "tailhit@10": 0.06}}}},
    }  # fmt: skip
    summary = summarise_seeds(reports, k=10)
    base_hit = summary["metrics"]["SASRec"]["base"]["hit@10"]
    assert base_hit["values"] == [0.1, 0.3]
    assert base_hit["mean"] == pytest.approx(0.2)
    assert base_hit["std"] == pytest.approx(math.sqrt(0.02))  # sample std: (0.1^2 + 0.1^2) / 1
    tail = summary["ratios"]["SASRec"]["faerec"]["tailhit@10"]
    assert tail["values"] == pytest.approx([2.5, 1.5])
    assert tail["of_means"] == pytest.approx(0.055 / 0.03)
    assert "base" not in summary["ratios"]["SASRec"]
    missing = summary["metrics"]["SASRec"]["faerec"]["coverage@10"]
    assert missing == {"values": [None, None], "mean": None, "std": None}
    assert summary["ratios"]["SASRec"]["faerec"]["coverage@10"]["of_means"] is None
    one = summarise_seeds({1: reports[1]}, k=10)["metrics"]["SASRec"]["base"]["hit@10"]
    assert one["mean"] == pytest.approx(0.1) and one["std"] is None


def test_a_report_per_seed_and_their_spread(tmp_path, monkeypatch):
    calls = []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base):
        calls.append((config_dict["seed"], base))
        scale = (1.0 if base else 2.0) * (1 + config_dict["seed"] / 10)
        model_file = tmp_path / f"{backbone}-{len(calls)}.pth"
        model_file.touch()
        return {
            "test_result": _result(scale),
            "best_valid_result": {"ndcg@10": 0.1},
            "model_file": str(model_file),
        }

    fake_load = _fake_loader({"seed": 1, "topk": [10], "head_ratio": 0.2})

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", fake_load)
    out = tmp_path / "seeds"
    summary = run_seed_reports("toy", ["SASRec"], [1, 3], out, config_dict={"epochs": 1})
    assert calls == [(1, True), (1, False), (3, True), (3, False)]
    for seed in (1, 3):
        saved = json.loads((out / f"seed-{seed}" / "results.json").read_text())
        assert saved["complete"] is True and f"--seed={seed}" in saved["command"]
    written = json.loads((out / "seeds.json").read_text())
    assert written == json.loads(json.dumps(summary)) and written["seeds"] == [1, 3]
    tail = written["metrics"]["SASRec"]["faerec"]["tailhit@10"]
    assert tail["values"] == pytest.approx([0.04 * 2 * 1.1, 0.04 * 2 * 1.3])
    assert written["ratios"]["SASRec"]["faerec"]["tailhit@10"]["values"] == pytest.approx([2, 2])
    text = (out / "seeds.md").read_text()
    assert "| 3 | FAERec / SASRec | 2.00x | 2.00x | 2.00x | 2.00x | 2.00x |" in text
    assert "| SASRec | SASRec | 0.2400 ± 0.0283 |" in text  # hit@10: 0.22 and 0.26
    assert "--seeds 1,3" in text and "--epochs=1" in written["command"]

    run_seed_reports("toy", ["SASRec"], [1, 3], out, config_dict={"epochs": 1}, resume=True)
    assert len(calls) == 4  # every seed's runs were kept
    with pytest.raises(ValueError, match="either --seeds or --seed"):
        run_seed_reports("toy", ["SASRec"], [1], out, config_dict={"seed": 2})


def test_seed_lists_are_checked(capsys):
    assert parse_seeds("2020, 2021,2022") == [2020, 2021, 2022]
    for bad in ("", "a,b", "1,1", "1.5"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    assert main(["--dataset", "toy", "--model", "SASRec", "--seeds", "x"]) == 2
    args, extra = build_parser().parse_known_args(["-d", "toy", "-m", "SASRec", "--seed=7"])
    assert args.seeds is None and extra == ["--seed=7"]  # RecBole's key, not --seeds
    assert "--seeds: 'x' is not a comma-separated list" in capsys.readouterr().err


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
    assert list(run) == ["base", "base+prior", "faerec", "faerec+prior"]
    for variant in run:
        for key in ("hit@10", "ndcg@10", "coverage@10"):
            assert math.isfinite(run[variant][key])
    for variant in ("base", "faerec"):
        assert saved["wall_time_s"]["SASRec"][variant] > 0
        record = saved["validation"]["SASRec"][variant]
        assert set(record["text_prior_valid_scores"]) == {"0", "12"}
        assert record["text_prior_weight"] in (0.0, 12.0)
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
