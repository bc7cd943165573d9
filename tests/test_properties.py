"""The shipped yaml files: dataset files hold data and protocol keys only, never FAERec's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

PROPERTIES = Path(__file__).resolve().parents[1] / "recbole_faerec" / "properties"
FAEREC_YAML = PROPERTIES / "model" / "FAERec.yaml"


def faerec_keys() -> set[str]:
    """Keys of FAERec.yaml."""
    return set(yaml.safe_load(FAEREC_YAML.read_text(encoding="utf-8")))


def _keys(name: str) -> set[str]:
    return set(yaml.safe_load((PROPERTIES / name).read_text(encoding="utf-8")))


def test_faerec_yaml_holds_the_model_keys_only():
    keys = faerec_keys()
    assert {"alpha", "lambda", "tau", "w_min", "w_max", "period", "target_table"} <= keys
    assert {"fusion", "score_table", "popularity_groups"} <= keys
    assert not keys & _keys("protocol.yaml")
    assert not any(key.startswith(("text_prior", "content_")) for key in keys)


def test_the_protocol_and_the_text_prior_have_their_own_yaml_files():
    assert {"loss_type", "train_mode", "train_batch_size", "stopping_step"} <= _keys(
        "protocol.yaml"
    )
    assert {"hidden_size", "epochs", "step_precision"} <= _keys("protocol.yaml")
    assert "text_prior" in _keys("text_prior.yaml")
    assert all(key.startswith("text_prior") for key in _keys("text_prior.yaml"))


@pytest.mark.parametrize("path", sorted((PROPERTIES / "dataset").glob("*.yaml")), ids=str)
def test_dataset_yaml_holds_no_faerec_keys(path):
    keys = set(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert not keys & faerec_keys(), f"{path.name} sets FAERec keys {keys & faerec_keys()}"


def test_paper_protocol_on_the_bundled_datasets():
    for name in ("amazon-beauty", "amazon-scientific", "yelp"):
        settings = yaml.safe_load((PROPERTIES / "dataset" / f"{name}.yaml").read_text())
        assert settings["repeatable"] is False and settings["MAX_ITEM_LIST_LENGTH"] == 50
        assert settings["loss_type"] == "BCE" and settings["train_mode"] == "all_positions"
