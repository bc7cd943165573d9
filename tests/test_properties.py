"""The shipped yaml files: dataset files hold data and protocol keys only, never FAERec's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

PROPERTIES = Path(__file__).resolve().parents[1] / "recbole_faerec" / "properties"
FAEREC_YAML = PROPERTIES / "model" / "FAERec.yaml"


def faerec_keys() -> set[str]:
    """Keys of the FAERec section of FAERec.yaml (before the backbone-size section)."""
    text = FAEREC_YAML.read_text(encoding="utf-8")
    section = text.split("# --- Backbone size")[0]
    return set(yaml.safe_load(section))


def test_faerec_section_lists_the_model_keys():
    keys = faerec_keys()
    assert {"alpha", "lambda", "tau", "w_min", "w_max", "period", "target_table"} <= keys
    assert {"fusion", "score_table", "align_negatives", "popularity_groups"} <= keys
    assert "loss_type" not in keys and "hidden_size" not in keys


@pytest.mark.parametrize("path", sorted((PROPERTIES / "dataset").glob("*.yaml")), ids=str)
def test_dataset_yaml_holds_no_faerec_keys(path):
    keys = set(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert not keys & faerec_keys(), f"{path.name} sets FAERec keys {keys & faerec_keys()}"


def test_paper_protocol_on_the_bundled_datasets():
    for name in ("amazon-beauty", "amazon-scientific"):
        settings = yaml.safe_load((PROPERTIES / "dataset" / f"{name}.yaml").read_text())
        assert settings["repeatable"] is False and settings["MAX_ITEM_LIST_LENGTH"] == 50
        assert settings["loss_type"] == "BCE" and settings["train_mode"] == "all_positions"
