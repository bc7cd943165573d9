"""Invalid settings fail before any data is loaded, with a message naming the key and the fix."""

from __future__ import annotations

import pytest

from recbole_faerec.config import build_config


def _build(sample_data_path, **overrides):
    return build_config(
        overrides.pop("backbone", "SASRec"),
        "amazon-beauty-sample",
        config_dict={"data_path": str(sample_data_path), **overrides},
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alpha": -0.1}, r"alpha: -0\.1 is invalid; expected a number >= 0"),
        ({"tau": 0.0}, r"tau: 0\.0 is invalid; expected a number > 0"),
        ({"tau": -1.0}, r"tau: -1\.0 is invalid"),
        ({"lambda": -0.5}, r"lambda: -0\.5 is invalid; expected a number >= 0"),
        (
            {"text_prior_weights": [0, -1]},
            r"text_prior_weights: \[0, -1\] is invalid; expected a list of numbers >= 0 that "
            r"holds 0",
        ),
        ({"text_prior_weights": []}, r"text_prior_weights: \[\] is invalid"),
        (
            {"text_prior_weights": [4, 8]},
            r"text_prior_weights: \[4, 8\] is invalid; expected a list of numbers >= 0 that "
            r"holds 0 \(the model alone.*; fix: --text_prior_weights=\.\.\.",
        ),
        ({"head_ratio": 2}, r"head_ratio: 2 is invalid; expected a share of the items in \(0, 1\)"),
        ({"head_ratio": 0.0}, r"head_ratio: 0\.0 is invalid"),
        ({"head_ratio": 1.0}, r"head_ratio: 1\.0 is invalid; .*; fix: --head_ratio=\.\.\."),
        (
            {"text_prior_shrinkage": 0.0},
            r"text_prior_shrinkage: 0\.0 is invalid; expected a number > 0",
        ),
        (
            {"text_prior_transition_epochs": -1},
            r"text_prior_transition_epochs: -1 is invalid; expected an int >= 0",
        ),
        ({"text_prior_dim": 0}, r"text_prior_dim: 0 is invalid; expected an int >= 1"),
        ({"w_min": 0.95, "w_max": 0.5}, r"w_min: 0\.95 is invalid; expected w_min <= w_max"),
        ({"w_max": 1.5}, r"w_max: 1\.5 is invalid; expected a number in \[0, 1\]"),
        ({"period": 0}, r"period: 0 is invalid; expected a number of epochs > 0"),
        ({"period": -3}, r"period: -3 is invalid"),
        ({"fusion": "concat"}, r"fusion: 'concat' is invalid; expected one of"),
        ({"target_table": "llm"}, r"target_table: 'llm' is invalid"),
        (
            {"projection_dropout": 1.0},
            r"projection_dropout: 1\.0 is invalid; expected a number in \[0, 1\)",
        ),
        ({"score_table": "id"}, r"score_table: 'id' is invalid; expected one of"),
        ({"align_max_items": 1}, r"align_max_items: 1 is invalid; expected null or a number >= 2"),
        ({"align_max_negatives": 0}, r"align_max_negatives: 0 is invalid; expected null or a"),
        ({"llm_input_dim": 0}, r"llm_input_dim: 0 is invalid; expected null or a number >= 1"),
        ({"step_precision": "fp16"}, r"step_precision: 'fp16' is invalid; expected one of"),
    ],
)
def test_invalid_hyperparameters_name_the_key_and_range(
    sample_data_path, run_dir, overrides, message
):
    with pytest.raises(ValueError, match=message):
        _build(sample_data_path, **overrides)


def test_the_fix_names_the_yaml_file_with_the_default(sample_data_path, run_dir):
    with pytest.raises(ValueError, match=r"fix: --alpha=\.\.\. .*properties/model/FAERec\.yaml"):
        _build(sample_data_path, alpha=-1.0)
    with pytest.raises(ValueError, match=r"fix: --text_prior_dim=\.\.\. .*properties/text_prior"):
        _build(sample_data_path, text_prior_dim=0)


def test_the_defaults_are_valid(sample_data_path, run_dir):
    config = _build(sample_data_path)
    assert (config["alpha"], config["lambda"], config["tau"]) == (0.1, 0.005, 0.05)
    assert (config["w_min"], config["w_max"], config["period"]) == (0.9, 1.0, 30)
    assert config["hidden_size"] == 128


def test_base_runs_ignore_faerec_only_keys(sample_data_path, run_dir):
    config = build_config(
        "SASRec",
        "amazon-beauty-sample",
        config_dict={"data_path": str(sample_data_path), "alpha": -1.0},
        base=True,
    )
    assert config["model"] == "SASRec"


def test_unknown_backbone_lists_the_choices(sample_data_path, run_dir):
    with pytest.raises(ValueError, match=r"backbone: unknown model 'SASRek'.*--list-backbones"):
        _build(sample_data_path, backbone="SASRek")


def test_non_sequential_model_is_rejected(sample_data_path, run_dir):
    with pytest.raises(ValueError, match=r"backbone: 'BPR' is a .* model; FAERec wraps sequential"):
        _build(sample_data_path, backbone="BPR")


@pytest.mark.parametrize(
    ("backbone", "reason"),
    [("FPMC", "no single item table"), ("RepeatNet", "repeat-aware"), ("FDSA", "feature-based")],
)
def test_backbone_without_a_wrappable_item_table_says_why(
    sample_data_path, run_dir, backbone, reason
):
    with pytest.raises(ValueError, match=rf"backbone: FAERec cannot wrap '{backbone}': .*{reason}"):
        _build(sample_data_path, backbone=backbone)


def test_loss_and_mode_a_backbone_lacks_are_named(sample_data_path, run_dir):
    with pytest.raises(ValueError, match=r"train_mode: 'NARM' supports `train_mode: prefix` only"):
        _build(sample_data_path, backbone="NARM", train_mode="all_positions")
    with pytest.raises(ValueError, match=r"loss_type: 'Caser' supports CE, BPR under"):
        _build(sample_data_path, backbone="Caser", loss_type="BCE")


def test_bpr_without_a_sampler_and_bce_with_one_are_explained(sample_data_path, run_dir):
    with pytest.raises(ValueError, match=r"train_neg_sample_args: `loss_type: BPR` needs"):
        _build(sample_data_path, loss_type="BPR")
    with pytest.raises(ValueError, match=r"train_neg_sample_args: the BCE loss samples"):
        _build(
            sample_data_path,
            loss_type="BCE",
            train_neg_sample_args={"distribution": "uniform", "sample_num": 1},
        )


@pytest.mark.parametrize("key", ["alpha", "tau", "lambda", "period", "align_max_items"])
def test_numbers_that_do_not_parse_are_named(sample_data_path, run_dir, key):
    with pytest.raises(ValueError, match=rf"{key}: '0\.3x' is not a number; fix: .*--{key}="):
        _build(sample_data_path, **{key: "0.3x"})


def test_the_cli_prints_one_line_and_exits_2(sample_data_path, run_dir, monkeypatch, capsys):
    from recbole_faerec.cli import main

    argv = [
        "--model=SASRec",
        "--dataset=amazon-beauty-sample",
        f"--data_path={sample_data_path}",
        "--alpha=0.3x",
    ]
    monkeypatch.setattr("sys.argv", ["run_recbole_faerec.py", *argv])
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error: alpha: '0.3x' is not a number; fix: give a number, e.g. --alpha=0.1 on the "
        "command line or `alpha: 0.1` in a yaml file."
    ]
    monkeypatch.setattr("sys.argv", ["run_recbole_faerec.py", *argv, "--debug"])
    with pytest.raises(ValueError, match="alpha"):
        main([*argv, "--debug"])


def test_an_unknown_loss_is_named_as_the_bad_value(sample_data_path, run_dir):
    with pytest.raises(ValueError, match=r"loss_type: 'XYZ' is not a loss .*fix: choose CE, BPR"):
        _build(sample_data_path, loss_type="XYZ")


def test_a_missing_config_file_is_named(sample_data_path, run_dir):
    with pytest.raises(FileNotFoundError, match=r"config_files: 'nowhere\.yaml' does not exist"):
        build_config("SASRec", "amazon-beauty-sample", ["nowhere.yaml"])


def test_a_malformed_config_file_is_named_with_its_line(sample_data_path, run_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("alpha: 0.2\ntau: [0.05\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml' is not valid yaml at line \d+; fix: "):
        build_config("SASRec", "amazon-beauty-sample", [str(bad)])


def test_distributed_address_comes_from_the_config_or_a_free_port(sample_data_path, run_dir):
    from recbole_faerec.quick_start import distributed_address

    settings = {"ip": "10.0.0.7", "port": 29411}
    assert distributed_address(_build(sample_data_path, **settings)) == (
        "10.0.0.7",
        "29411",
    )
    ip, port = distributed_address(_build(sample_data_path))
    assert ip == "localhost" and 0 < int(port) < 65536 and port != "5678"


def test_a_dataset_emptied_by_filtering_names_the_dataset_and_the_fix(sample_data_path, run_dir):
    from recbole_faerec.data.dataset import create_dataset

    config = _build(sample_data_path, user_inter_num_interval="[100000,inf)")
    with pytest.raises(ValueError, match=r"amazon-beauty-sample.*no interactions left.*fix: "):
        create_dataset(config)


def test_config_files_separated_by_several_spaces_are_all_read(
    sample_data_path, run_dir, tmp_path, monkeypatch, capsys
):
    from recbole_faerec.cli import main

    (tmp_path / "a.yaml").write_text("alpha: 0.3\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("tau: -1.0\n", encoding="utf-8")
    argv = [
        "--dataset=amazon-beauty-sample",
        f"--data_path={sample_data_path}",
        f"--config_files={tmp_path / 'a.yaml'}  {tmp_path / 'b.yaml'}",
    ]
    monkeypatch.setattr("sys.argv", ["run_recbole_faerec.py", *argv])
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: tau: -1.0 is invalid")

    space = tmp_path / "space.yaml"
    space.write_text("alpha: {grid: [0.1, 0.3]}\n", encoding="utf-8")
    argv = [
        f"--tune={space}",
        "--dataset=amazon-beauty-sample",
        f"--data_path={sample_data_path}",
        f"--config_files={tmp_path / 'a.yaml'}   {tmp_path / 'missing.yaml'}",
    ]
    monkeypatch.setattr("sys.argv", ["run_recbole_faerec.py", *argv])
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: config_files: '{tmp_path / 'missing.yaml'}' does not exist; fix: give the path "
        "of a yaml file (several files separated by spaces)."
    ]
