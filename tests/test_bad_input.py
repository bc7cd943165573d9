"""Bad input ends in one ``error: <key>: ...; fix: ...`` line and exit code 2, never a traceback.

Each probe runs a command line in-process, as a user would type it on the bundled sample; all but
the LLM-table and API-key probes fail before any data is loaded.
"""

from __future__ import annotations

import numpy as np
import pytest

from recbole_faerec.cli import main
from recbole_faerec.config import build_config
from recbole_faerec.io import ConfigError, FAERecError, parse_overrides

SAMPLE = "amazon-beauty-sample"


def _run(monkeypatch, capsys, entry, argv, prog="run_recbole_faerec.py"):
    """Exit code and stderr of ``entry(argv)`` with ``argv`` as the process's command line too
    (RecBole's Config reads ``sys.argv``)."""
    monkeypatch.setattr("sys.argv", [prog, *argv])
    code = entry(argv)
    return code, capsys.readouterr().err


def _item_tokens(sample_data_path) -> list[str]:
    lines = (sample_data_path / SAMPLE / f"{SAMPLE}.item").read_text(encoding="utf-8").splitlines()
    return [line.split("\t", 1)[0] for line in lines[1:] if line]


def _table(path, tokens, vectors):
    np.savez(path, items=np.asarray(tokens), embeddings=np.asarray(vectors, dtype=np.float32))
    return path


def _nan_table(tmp_path, tokens):
    vectors = np.eye(len(tokens), 8, dtype=np.float32) + 1.0
    vectors[0, 0] = np.nan
    return _table(tmp_path / "nan.npz", tokens, vectors)


def _zero_table(tmp_path, tokens):
    return _table(tmp_path / "zero.npz", tokens, np.zeros((len(tokens), 8)))


def _bad_yaml(tmp_path, tokens):
    (tmp_path / "bad.yaml").write_text("alpha: 0.2\ntau: [0.05\n", encoding="utf-8")
    return tmp_path / "bad.yaml"


def _yaml_with_text_for_a_number(tmp_path, tokens):
    (tmp_path / "layers.yaml").write_text("n_layers: two\n", encoding="utf-8")
    return tmp_path / "layers.yaml"


# (flags, what the error line names; a {file} in either is the file the probe writes)
PROBES = {
    # issue 38
    "openai without a key": (["--embedding_provider=openai"], "OPENAI_API_KEY"),
    "backbone key as text": (["--hidden_size=abc"], "hidden_size: 'abc' is not a number"),
    "empty sequences": (["--MAX_ITEM_LIST_LENGTH=0"], "MAX_ITEM_LIST_LENGTH: 0 is invalid"),
    "a key twice": (["--epochs=1", "--epochs=-1"], "epochs: given twice with different values"),
    "no processes": (["--nproc=0"], "nproc: 0 is invalid"),
    # the earlier reliability probes
    "FAERec number typo": (["--alpha=0.3x"], "alpha: '0.3x' is not a number"),
    "unknown loss": (["--loss_type=XYZ"], "loss_type: 'XYZ' is not a loss"),
    "NaN LLM table": (["--llm_embedding_file={file}"], "{file}: 1 item vectors hold NaN"),
    "all-zero LLM table": (["--llm_embedding_file={file}"], "{file}: every item has the same"),
    "missing yaml": (["--config_files=nowhere.yaml"], "config_files: 'nowhere.yaml' does not"),
    "malformed yaml": (["--config_files={file}"], "config_files: '{file}' is not valid yaml"),
    # more of the same kinds
    "text for a number in a yaml": (["--config_files={file}"], "n_layers: 'two' is not a number"),
    "fractional size": (["--n_heads=2.5"], "n_heads: 2.5 is invalid; fix: give an int >= 1"),
    "zero batch": (["--train_batch_size=0"], "train_batch_size: 0 is invalid"),
    "negative epochs": (["--epochs=-1"], "epochs: -1 is invalid"),
    "null size": (["--hidden_size=None"], "hidden_size: None is invalid"),
    "RecBole's own check": (["--topk=abc"], "The topk [abc] must be a integer"),
    # issue 48
    "head share above 1": (["--head_ratio=2"], "head_ratio: 2 is invalid"),
    "weights without 0": (["--text_prior_weights=[4,8]"], "text_prior_weights: [4, 8] is invalid"),
}
FILES = {
    "NaN LLM table": _nan_table,
    "all-zero LLM table": _zero_table,
    "malformed yaml": _bad_yaml,
    "text for a number in a yaml": _yaml_with_text_for_a_number,
}
# probes that load the data first (their stderr also holds the run's log before the error)
AFTER_DATA = {"openai without a key", "NaN LLM table", "all-zero LLM table"}


@pytest.mark.parametrize("probe", PROBES)
def test_each_bad_input_is_one_error_line_with_exit_code_2(
    probe, sample_data_path, run_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    flags, named = PROBES[probe]
    if probe in FILES:
        file = str(FILES[probe](tmp_path, _item_tokens(sample_data_path)))
        flags = [flag.format(file=file) for flag in flags]
        named = named.format(file=file)
    argv = [
        "--model=SASRec",
        f"--dataset={SAMPLE}",
        f"--data_path={sample_data_path}",
        "--show_progress=False",
        *flags,
    ]
    code, err = _run(monkeypatch, capsys, main, argv)
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0]
    if probe not in AFTER_DATA:
        assert lines == errors
    assert named in errors[0] and "; fix: " in errors[0]

    monkeypatch.setattr("sys.argv", ["run_recbole_faerec.py", *argv, "--debug"])
    with pytest.raises((FAERecError, ValueError, OSError)):
        main([*argv, "--debug"])


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--hidden_size=abc"], "hidden_size: 'abc' is not a number"),
        (["--epochs=1", "--epochs=-1"], "epochs: given twice with different values"),
        (["--MAX_ITEM_LIST_LENGTH=0"], "MAX_ITEM_LIST_LENGTH: 0 is invalid"),
    ],
)
def test_the_report_prints_the_same_line(
    flags, named, sample_data_path, run_dir, monkeypatch, capsys
):
    from recbole_faerec.report.cli import main as report_main

    argv = ["--dataset", SAMPLE, "--model", "SASRec", f"--data_path={sample_data_path}", *flags]
    code, err = _run(monkeypatch, capsys, report_main, argv, prog="recbole_faerec.report")
    lines = [line for line in err.strip().splitlines() if not line.startswith("report:")]
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith(f"error: {named}")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--hidden_size=abc"], "hidden_size: 'abc' is not a number"),
        (["--epochs=1", "--epochs=-1"], "epochs: given twice with different values"),
        (["--embedding_size=0"], "embedding_size: 0 is invalid"),
    ],
)
def test_the_sweep_prints_the_same_line(
    flags, named, sample_data_path, run_dir, tmp_path, monkeypatch, capsys
):
    space = tmp_path / "space.yaml"
    space.write_text("alpha: {grid: [0.1, 0.3]}\n", encoding="utf-8")
    argv = [f"--tune={space}", f"--dataset={SAMPLE}", f"--data_path={sample_data_path}", *flags]
    code, err = _run(monkeypatch, capsys, main, argv)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and err.startswith(f"error: {named}")


def test_the_python_api_raises_the_plugin_s_config_error(sample_data_path, run_dir):
    from recbole_faerec.quick_start import run

    with pytest.raises(ConfigError, match=r"hidden_size: 'abc' is not a number; fix: "):
        build_config(
            "SASRec", SAMPLE, config_dict={"data_path": str(sample_data_path), "hidden_size": "abc"}
        )
    with pytest.raises(ConfigError, match=r"nproc: 0 is invalid; fix: give an int >= 1"):
        run("SASRec", SAMPLE, nproc=0)


def test_numbers_are_checked_for_every_backbone_key_with_a_number_default(
    sample_data_path, run_dir
):
    settings = {"data_path": str(sample_data_path), "num_layers": "1x"}
    with pytest.raises(ConfigError, match=r"num_layers: '1x' is not a number; .*--num_layers=1 "):
        build_config("GRU4Rec", SAMPLE, config_dict=settings)
    with pytest.raises(ConfigError, match=r"learning_rate: \[0\.1\] is not a number"):
        build_config(
            "SASRec",
            SAMPLE,
            config_dict={"data_path": str(sample_data_path), "learning_rate": [0.1]},
        )
    # a number-valued key that may be null stays nullable; text-valued keys are not numbers
    config = build_config(
        "SASRec",
        SAMPLE,
        config_dict={"data_path": str(sample_data_path), "llm_input_dim": None, "gpu_id": "0"},
    )
    assert config["llm_input_dim"] is None


def test_overrides_repeated_with_another_value_are_refused():
    assert parse_overrides(["--epochs=2", "--epochs=2"]) == {"epochs": 2}
    with pytest.raises(ConfigError, match=r"epochs: given twice .*--epochs=2 and --epochs=3"):
        parse_overrides(["--epochs=2", "--epochs=3"])


def test_numpy_numbers_as_a_sweep_samples_them_are_numbers(sample_data_path, run_dir):
    settings = {"data_path": str(sample_data_path), "hidden_size": np.int64(64)}
    config = build_config("SASRec", SAMPLE, config_dict={**settings, "alpha": np.float64(0.2)})
    assert config["hidden_size"] == 64


def test_a_data_path_that_is_a_file_is_one_error_line_with_the_fix(
    sample_data_path, run_dir, tmp_path, monkeypatch, capsys
):
    file = tmp_path / "not-a-folder.txt"
    file.write_text("x\n", encoding="utf-8")
    argv = ["--model=SASRec", f"--dataset={SAMPLE}", f"--data_path={file}"]
    code, err = _run(monkeypatch, capsys, main, argv)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: data_path: {str(file)!r} is a file, not a folder; fix: give the folder that "
        "holds <dataset>/<dataset>.inter, e.g. --data_path=dataset/ (the default)."
    ]
    monkeypatch.setattr("sys.argv", ["run_recbole_faerec.py"])
    with pytest.raises(ConfigError, match=r"data_path: .* lies in the file .*; fix: give the"):
        build_config("SASRec", SAMPLE, config_dict={"data_path": str(file / "below")})
