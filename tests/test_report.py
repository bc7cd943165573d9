"""The paper-style report: formatting on hand-made results, plumbing and one real end-to-end run."""

from __future__ import annotations

import json
import math
import shlex
import shutil
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image
import pytest
import torch
from conftest import SAMPLE

from recbole_faerec.config import split_config_files
from recbole_faerec.docs import ROOT
from recbole_faerec.io import parse_overrides
from recbole_faerec.report import (
    ABLATIONS,
    build_parser,
    format_report_markdown,
    main,
    method_variants,
    parse_seeds,
    relative_improvement,
    report_command,
    run_report,
    run_seed_reports,
    summarise_seeds,
    validation_pick,
    validation_pick_text,
    variant_label,
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
    # With the bare backbone the only baseline, Table 2's Impr. is FAERec over it.
    assert "| SASRec | Impr. | +50.00% | +50.00% | +50.00% | +50.00% | +50.00% | +50.00% |" in lines
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


def _method(base: bool, method: str | None) -> str:
    """The method a fake run was asked for: ``method``, else ``bare`` or ``faerec`` by ``base``."""
    return method or ("bare" if base else "faerec")


def test_backbones_and_ablations_plumbing(tmp_path, monkeypatch):
    calls, folders = [], []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base=False, method=None):
        settings = dict(config_dict)
        folders.append(settings.pop("checkpoint_dir"))
        calls.append((backbone, settings, _method(base, method)))
        scale = 1.0 if _method(base, method) == "bare" else 1.1
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
    # every method around a backbone before the next (LLM-ESR, the slowest by far, last of
    # them), then the ablations
    methods = ["bare", "llminit", "faerec", "llmesr"]
    ablations = ["faerec"] * len(ABLATIONS)
    assert [(b, m) for b, _, m in calls] == [
        *((b, m) for b in ("SASRec", "GRU4Rec") for m in methods),
        *((b, m) for m in ablations for b in ("SASRec", "GRU4Rec")),
    ]
    assert [c for _, c, _ in calls[:8]] == [{"epochs": 1, "text_prior": True}] * 8
    assert len(set(folders)) == len(calls)  # every run keeps its checkpoints apart
    assert Path(folders[-1]).name == "GRU4Rec-w-o-PG"
    for i, switches in enumerate(ABLATIONS.values()):  # the ablations are FAERec's only
        for _, config_dict, _ in calls[8 + 2 * i : 10 + 2 * i]:
            assert config_dict == {"epochs": 1, **switches, "text_prior": False}
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["metrics"]) == ["SASRec", "GRU4Rec"]
    rows = ["base", "base+prior", "llminit", "llminit+prior", "llmesr", "llmesr+prior"]
    rows += ["faerec", "faerec+prior", *ABLATIONS]
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
    assert "--methods" not in saved["command"]  # all four: the command of the older reports
    text = (out / "results.md").read_text()
    assert "| GRU4Rec | FAERec w/o PG |" in text
    assert (
        "| GRU4Rec | GRU4Rec + text prior |" in text and "| GRU4Rec | FAERec + text prior |" in text
    )
    assert "| GRU4Rec | LLMInit + text prior |" in text and "| GRU4Rec | LLM-ESR |" in text
    # Over the bare backbone after each attributed row: the two prior rows of Table 2 (whose
    # FAERec row has Impr. instead), all three of the coverage and group tables.
    assert text.count("| GRU4Rec | Improv. |") == 2 + 3 + 3
    assert text.count("| GRU4Rec | Impr. |") == 1
    _assert_png(out / "groups.png")
    _assert_png(out / "tsne.png")


def test_an_interrupted_report_resumes_without_rerunning_finished_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls, settings = [], []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base=False, method=None):
        calls.append(_method(base, method))
        settings.append(dict(config_dict))
        if len(calls) == 2:  # killed during the LLMInit run, after its state of epoch 3
            Path(config_dict["checkpoint_dir"]).mkdir(parents=True)
            (Path(config_dict["checkpoint_dir"]) / "LLMInit-3-resume.pth").touch()
            raise KeyboardInterrupt
        model_file = tmp_path / f"{backbone}-{len(calls)}.pth"
        model_file.touch()
        return {
            "test_result": _result(1.0 if _method(base, method) == "bare" else 1.1),
            "best_valid_result": {"ndcg@10": 0.1},
            "model_file": str(model_file),
            "seconds_before_resume": 1000.0 if "resume" in config_dict else 0.0,
        }

    fake_load = _fake_loader({"seed": 5, "topk": [10], "head_ratio": 0.2})

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", fake_load)
    out = tmp_path / "report"
    with pytest.raises(KeyboardInterrupt):
        run_report("toy", ["SASRec"], out, tsne_items=40)
    partial = json.loads((out / "results.json").read_text())
    assert partial["complete"] is False and list(partial["metrics"]["SASRec"]) == ["base"]
    assert not (out / "results.md").exists()  # no header yet (the settings of the FAERec run)

    run_report("toy", ["SASRec"], out, tsne_items=40, resume=True)
    # the bare run was kept, only the missing ones ran; the LLMInit run from its last state
    assert calls == ["bare", "llminit", "llminit", "faerec", "llmesr"]
    folders = [Path(c["checkpoint_dir"]) for c in settings]
    assert folders[1] == folders[2] and len(set(folders)) == 4  # a folder per run
    assert folders[0].parent.parent == Path("saved", "reports")
    assert settings[2]["resume"] == str(folders[1] / "LLMInit-3-resume.pth")
    assert [("resume" in c) for c in settings] == [False, False, True, False, False]
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is True and "Partial" not in (out / "results.md").read_text()
    assert list(saved["metrics"]["SASRec"]) == ["base", "llminit", "llmesr", "faerec"]
    assert saved["model_files"]["SASRec"]["base"] == str(tmp_path / "SASRec-1.pth")
    walls = saved["wall_time_s"]["SASRec"]  # the resumed run's time before it stopped counts
    assert walls["llminit"] >= 1000 > max(walls["base"], walls["faerec"], walls["llmesr"])

    run_report("toy", ["SASRec"], out, tsne_items=40, resume=True)
    assert len(calls) == 5  # nothing left to run
    run_report("toy", ["SASRec"], out, tsne_items=40, config_dict={"epochs": 2}, resume=True)
    assert len(calls) == 9  # another command: nothing is kept, no state continued
    assert not any("resume" in c for c in settings[5:])


def test_a_partial_report_with_known_settings_carries_its_header(tmp_path, monkeypatch):
    calls = []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base=False, method=None):
        calls.append(_method(base, method))
        if len(calls) > 4:
            raise KeyboardInterrupt  # the resumed report is killed in its first run
        model_file = tmp_path / f"{backbone}-{len(calls)}.pth"
        model_file.touch()
        return {
            "test_result": _result(1.0),
            "best_valid_result": {"ndcg@10": 0.1},
            "model_file": str(model_file),
        }

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", _fake_loader({"seed": 5}))
    out = tmp_path / "report"
    run_report("toy", ["SASRec"], out, tsne_items=40)
    complete = json.loads((out / "results.json").read_text())
    old = {key: complete[key] for key in ("metrics", "model_files", "settings", "command")}
    for key in ("llminit", "llmesr"):  # a report from before the LLM baselines, no header
        del old["metrics"]["SASRec"][key], old["model_files"]["SASRec"][key]
    (out / "results.json").write_text(json.dumps({**old, "complete": False}))
    with pytest.raises(KeyboardInterrupt):
        run_report("toy", ["SASRec"], out, tsne_items=40, resume=True)
    partial = json.loads((out / "results.json").read_text())
    assert partial["complete"] is False and calls[4:] == ["llminit"]
    assert partial["metrics"] == old["metrics"]
    assert (partial["dataset"], partial["seed"], partial["k"]) == ("toy", 5, 10)
    assert partial["backbones"] == ["SASRec"] and partial["protocol"] == complete["protocol"]
    # results.md holds the kept runs and says it is partial.
    text = (out / "results.md").read_text()
    assert "**Partial report**" in text and "| SASRec | FAERec |" in text
    assert "| SASRec | LLMInit |" not in text


def test_a_report_resumes_on_a_machine_without_its_model_files(tmp_path, monkeypatch):
    calls, loads = [], []

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base=False, method=None):
        calls.append(_method(base, method))
        if len(calls) == 4:
            raise KeyboardInterrupt  # killed during the LLM-ESR run
        model_file = tmp_path / f"{backbone}-{len(calls)}.pth"
        model_file.touch()
        return {
            "test_result": _result(1.0 if _method(base, method) == "bare" else 1.1),
            "best_valid_result": {"ndcg@10": 0.1},
            "model_file": str(model_file),
        }

    # the FAERec run continued from a resume state: where from is not one of its settings
    fake_load = _fake_loader({"seed": 5, "topk": [10], "head_ratio": 0.2, "resume": "F.pth"})

    def counting_load(model_file):
        loads.append(Path(model_file).name)
        return fake_load(model_file)

    monkeypatch.setattr(report_runner, "run_recbole_faerec", fake_run)
    monkeypatch.setattr(report_runner, "load_data_and_model", counting_load)
    out = tmp_path / "report"
    with pytest.raises(KeyboardInterrupt):
        run_report("toy", ["SASRec"], out, tsne_items=40, ablations=True)
    assert loads == ["SASRec-3.pth"]  # the FAERec run's views were sampled as it finished
    partial = json.loads((out / "results.json").read_text())
    assert partial["settings"]["SASRec"]["seed"] == 5
    assert "resume" not in partial["settings"]["SASRec"]
    for model_file in tmp_path.glob("*.pth"):
        model_file.unlink()  # a new machine: the checkpoints are gone, the report folder is not

    run_report("toy", ["SASRec"], out, tsne_items=40, ablations=True, resume=True)
    assert calls == ["bare", "llminit", "faerec", "llmesr", "llmesr", *["faerec"] * len(ABLATIONS)]
    assert loads == ["SASRec-3.pth"]  # the t-SNE came from the saved views
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is True and saved["seed"] == 5
    assert list(saved["metrics"]["SASRec"])[:4] == ["base", "llminit", "llmesr", "faerec"]
    _assert_png(out / "tsne.png")


def test_rescoring_a_report_refits_the_prior_rows_and_trains_nothing(tmp_path, monkeypatch):
    def run_with_prior(model_file, weight: float, gain: float) -> dict:
        scale = 1.0 if "bare" in str(model_file) else 1.1
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

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base=False, method=None):
        model_file = tmp_path / f"{backbone}-{_method(base, method)}.pth"
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
    assert rescored == [f"SASRec-{m}.pth" for m in ("bare", "llminit", "faerec", "llmesr")]
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

    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base=False, method=None):
        calls.append((config_dict["seed"], _method(base, method)))
        scale = (1.0 if _method(base, method) == "bare" else 2.0) * (1 + config_dict["seed"] / 10)
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
    summary = run_seed_reports(
        "toy", ["SASRec"], [1, 3], out, config_dict={"epochs": 1}, methods="faerec,bare"
    )
    assert calls == [(1, "bare"), (1, "faerec"), (3, "bare"), (3, "faerec")]
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
    assert "--methods bare,faerec" in written["command"]

    run_seed_reports(
        "toy",
        ["SASRec"],
        [1, 3],
        out,
        config_dict={"epochs": 1},
        methods="bare,faerec",
        resume=True,
    )
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
    methods = ["base", "llminit", "llmesr", "faerec"]  # every method by default
    assert list(run) == [row for method in methods for row in (method, f"{method}+prior")]
    for variant in run:
        for key in ("hit@10", "ndcg@10", "coverage@10"):
            assert math.isfinite(run[variant][key])
    for variant in methods:
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
    assert "| SASRec | Impr. |" in text and "| SASRec | LLM-ESR + text prior |" in text
    picked = validation_pick(saved, "SASRec")["variant"]
    assert picked in run and f"| SASRec | {variant_label('SASRec', picked)} |" in text
    _assert_png(out / "groups.png")
    _assert_png(out / "tsne.png")


#: Hand-made Table 2 figures: FAERec's Impr. is over the best baseline of each column.
PAPER_ROWS = {
    "base": {"hit@10": 0.10, "ndcg@10": 0.05, "tailhit@10": 0.02},
    "llminit": {"hit@10": 0.12, "ndcg@10": 0.04, "tailhit@10": NAN},
    "llmesr": {"hit@10": 0.08, "ndcg@10": 0.06, "tailhit@10": 0.025},
    "faerec": {"hit@10": 0.15, "ndcg@10": 0.045, "tailhit@10": 0.03},
}


def _paper_report() -> dict:
    """Every method and its prior row, listed out of order; validation records of each run."""
    rows = {f"{v}+prior": {k: 2 * x for k, x in r.items()} for v, r in PAPER_ROWS.items()}
    metrics = {"faerec+prior": rows["faerec+prior"], "w/o AGF": PAPER_ROWS["base"]}
    metrics |= {v: PAPER_ROWS[v] for v in ("faerec", "llmesr", "base", "llminit")}
    metrics |= {v: rows[v] for v in ("llmesr+prior", "base+prior", "llminit+prior")}
    validation = {
        "base": {"ndcg@10": 0.040, "text_prior_weight": 4.0,
                 "text_prior_valid_scores": {"0": 0.040, "4": 0.055, "8": 0.070}},
        "llminit": {"ndcg@10": 0.050, "text_prior_weight": 0.0,
                    "text_prior_valid_scores": {"0": 0.050, "4": 0.049}},
        "llmesr": {"ndcg@10": 0.056, "text_prior_weight": 2.0,
                   "text_prior_valid_scores": {"0": 0.056, "2": 0.060}},
        "faerec": {"ndcg@10": 0.058},
        "w/o AGF": {"ndcg@10": 0.09},  # an ablation is not a row to deploy
    }  # fmt: skip
    return {"k": 10, "metrics": {"SASRec": metrics}, "validation": {"SASRec": validation}}


def test_table2_has_a_row_per_method_in_the_papers_order_and_faerecs_impr():
    text = format_report_markdown(_paper_report())
    table2 = text.split("## Overall")[1].split("## ")[0]
    labels = [line.split(" | ")[1] for line in table2.splitlines() if line.startswith("| SASRec")]
    assert labels == [
        "SASRec",
        "LLMInit",
        "LLM-ESR",
        "FAERec",
        "Impr.",
        "SASRec + text prior",
        "Improv.",
        "LLMInit + text prior",
        "LLM-ESR + text prior",
        "FAERec + text prior",
        "Improv.",
    ]
    # H@10: 0.15 over LLMInit's 0.12; N@10: 0.045 over LLM-ESR's 0.06; tail H@10: 0.03 over
    # LLM-ESR's 0.025 (LLMInit's is undefined); tail N@10 and the head: undefined.
    assert "| SASRec | Impr. | +25.00% | -25.00% | +20.00% | - | - | - |" in table2
    # The prior rows' improvement over the bare backbone stays: 2x -> +100%.
    assert "| SASRec | Improv. | +100.00% | +100.00% | +100.00% | - | - | - |" in table2


def test_impr_is_over_the_baselines_a_report_has():
    def impr_row(variants: list[str]) -> str:
        metrics = {"SASRec": {v: PAPER_ROWS[v] for v in variants}}
        table2 = format_report_markdown({"k": 10, "metrics": metrics}).split("## Overall")[1]
        return next(line for line in table2.splitlines() if "| Impr. |" in line)

    assert impr_row(["base", "faerec"]).startswith("| SASRec | Impr. | +50.00% | -10.00% | +50.00%")
    assert impr_row(["llmesr", "faerec"]).startswith("| SASRec | Impr. | +87.50% | -25.00% |")
    assert relative_improvement(0.12, 0.15) == pytest.approx(25.0)
    for without in (["base", "llminit", "llmesr"], ["faerec"]):  # no FAERec, or nothing to beat
        metrics = {"SASRec": {v: PAPER_ROWS[v] for v in without}}
        assert "Impr." not in format_report_markdown({"k": 10, "metrics": metrics}).split("## ")[2]


def test_validation_picks_the_best_row_with_or_without_the_prior():
    report = _paper_report()
    # base + text prior at its weight 4: 0.055, below LLM-ESR + prior's 0.060 and FAERec's 0.058
    # (the 0.070 of weight 8 is not the weight validation chose; the ablation is not a row).
    pick = validation_pick(report, "SASRec")
    assert pick["variant"] == "llmesr+prior" and pick["valid"] == pytest.approx(0.060)
    assert pick["test"] == pytest.approx(0.12) and pick["ratio"] == pytest.approx(0.12 / 0.05)
    text = format_report_markdown(report)
    assert "| SASRec | LLM-ESR + text prior | 0.0600 | 0.1200 | 2.40x |" in text
    assert validation_pick_text("SASRec", pick) == (
        "LLM-ESR + text prior (validation N@10 0.0600; its test N@10 0.1200, "
        "2.40x the bare backbone's)"
    )
    report["validation"]["SASRec"]["base"]["text_prior_weight"] = 8  # as an int, key "8"
    assert validation_pick(report, "SASRec")["variant"] == "base+prior"
    # A tie goes to the row listed first: the model alone (a prior weight of 0 is the model).
    report["validation"]["SASRec"] = {"llminit": report["validation"]["SASRec"]["llminit"]}
    assert validation_pick(report, "SASRec")["variant"] == "llminit"
    assert validation_pick({"metrics": report["metrics"]}, "SASRec") is None


def _method_fake(calls: list, tmp_path: Path):
    def fake_run(backbone, dataset, config_file_list, config_dict, saved, base=False, method=None):
        calls.append((backbone, _method(base, method)))
        model_file = tmp_path / f"{backbone}-{_method(base, method)}.pth"
        model_file.touch()
        return {
            "test_result": _result(1.2),
            "best_valid_result": {"ndcg@10": 0.1},
            "text_prior": {
                "weight": 4.0,
                "valid_scores": {"0": 0.1, "4": 0.2},
                "test_result_without": _result(1.0),
            },
            "model_file": str(model_file),
        }

    return fake_run


def test_a_report_restricted_with_methods_trains_only_those(tmp_path, monkeypatch, capsys):
    calls, loads = [], []
    fake_load = _fake_loader({"seed": 5, "topk": [10], "head_ratio": 0.2})
    monkeypatch.setattr(report_runner, "run_recbole_faerec", _method_fake(calls, tmp_path))
    monkeypatch.setattr(
        report_runner, "load_data_and_model", lambda f: loads.append(f) or fake_load(f)
    )
    out = tmp_path / "two"
    argv = ["-d", "toy", "-m", "SASRec,GRU4Rec", "--out", str(out), "--tsne-items", "40"]
    assert main([*argv, "--methods", "llmesr, bare"]) == 0
    assert calls == [(b, m) for b in ("SASRec", "GRU4Rec") for m in ("bare", "llmesr")]
    saved = json.loads((out / "results.json").read_text())
    assert saved["variants"] == ["base", "base+prior", "llmesr", "llmesr+prior"]
    assert saved["command"].endswith("--methods bare,llmesr --tsne-items 40")
    # Without FAERec: the settings come from the first run's checkpoint, and there is no t-SNE.
    assert loads == [str(tmp_path / f"{b}-bare.pth") for b in ("SASRec", "GRU4Rec")]
    assert saved["settings"]["SASRec"]["seed"] == 5 and not (out / "tsne.png").exists()
    assert "| SASRec | Impr. |" not in (out / "results.md").read_text()
    assert main([*argv, "--methods", "llmesr,bare", "--resume"]) == 0
    assert len(calls) == 4  # the same command, in another order: every run kept

    assert main([*argv, "--methods", "faerec", "--out", str(tmp_path / "one")]) == 0
    assert calls[4:] == [("SASRec", "faerec"), ("GRU4Rec", "faerec")]
    assert (tmp_path / "one" / "tsne.png").exists()
    capsys.readouterr()
    assert main([*argv, "--methods", "bare,llmesr", "--ablations"]) == 2
    assert "fix: add faerec to --methods" in capsys.readouterr().err
    assert main([*argv, "--methods", "bare,sasrec"]) == 2
    assert "--methods: 'bare,sasrec' names 'sasrec'" in capsys.readouterr().err
    assert len(calls) == 6


def test_method_names_and_the_command_of_every_method():
    assert method_variants(None) == ["base", "llminit", "llmesr", "faerec"]
    assert method_variants("faerec, bare") == ["base", "faerec"]
    assert method_variants(["llminit"]) == ["llminit"]
    for bad in ("", "base", "bare,,x"):
        with pytest.raises(ValueError, match="--methods"):
            method_variants(bad)
    args = ("toy", ["SASRec"], Path("out"), None, {}, False, 10)
    assert "--methods" not in report_command(*args)
    assert "--methods" not in report_command(*args, method_variants("bare,llminit,llmesr,faerec"))
    assert "--methods llminit,faerec --tsne-items" in report_command(
        *args, method_variants("faerec,llminit")
    )


COMMITTED = sorted(
    path for path in (ROOT / "reports").glob("*/results.json") if "command" in path.read_text()
)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: path.parent.name)
def test_the_committed_reports_keep_their_command_with_the_default_methods(path):
    """A committed report resumes only if the command of the same arguments is its command."""
    command = json.loads(path.read_text(encoding="utf-8"))["command"]
    args, extra = build_parser().parse_known_args(shlex.split(command)[3:])
    assert args.methods is None
    overrides = parse_overrides(extra, literal=False)
    config_files = split_config_files(args.config_files)
    backbones = args.model.split(",")
    again = report_command(
        args.dataset, backbones, Path(args.out), config_files, overrides, args.ablations,
        args.tsne_items, method_variants(args.methods),
    )  # fmt: skip
    assert again == command


def test_resuming_the_committed_beauty_report_trains_only_the_llm_baselines(tmp_path, monkeypatch):
    folder = "reports/amazon-beauty-SASRec_FMLPRec_LRURec"
    shutil.copytree(ROOT / folder, tmp_path / folder)
    # the report as it was before the LLM baselines: their rows, files and times taken out
    results = tmp_path / folder / "results.json"
    committed = json.loads(results.read_text(encoding="utf-8"))
    baselines = {"llminit", "llminit+prior", "llmesr", "llmesr+prior"}
    for key in ("metrics", "validation", "model_files", "wall_time_s"):
        for rows in committed[key].values():
            for row in baselines & set(rows):
                del rows[row]
    committed["complete"] = False
    results.write_text(json.dumps(committed), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(report_runner, "run_recbole_faerec", _method_fake(calls, tmp_path))
    monkeypatch.setattr(report_runner, "load_data_and_model", _no_training)
    monkeypatch.setattr(report_runner, "plot_tsne", lambda views, path, seed: path)
    assert main([*shlex.split(committed["command"])[3:], "--resume"]) == 0
    backbones = ["SASRec", "FMLPRec", "LRURec"]
    missing = [
        (b, m) for b in backbones for m in ("llminit", "llmesr") if m not in committed["metrics"][b]
    ]
    assert len(missing) == 6 and calls == missing  # only the LLM baselines' runs it lacks
    saved = json.loads((tmp_path / folder / "results.json").read_text(encoding="utf-8"))
    assert saved["command"] == committed["command"] and saved["complete"] is True
    for backbone in backbones:
        rows = saved["metrics"][backbone]
        assert list(rows) == [
            "base", "base+prior", "llminit", "llminit+prior", "llmesr", "llmesr+prior",
            "faerec", "faerec+prior", *ABLATIONS,
        ]  # fmt: skip
        for variant, result in committed["metrics"][backbone].items():
            assert rows[variant] == result, (backbone, variant)
            assert saved["validation"][backbone].get(variant) == (
                committed["validation"][backbone].get(variant)
            )
        assert saved["settings"][backbone] == committed["settings"][backbone]
