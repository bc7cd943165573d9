"""Bundled datasets: shipped files, materialisation, RecBole loading, reproducible regeneration."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE

from recbole_faerec.data import bundled
from recbole_faerec.data.bundled import (
    BUNDLED_DATASETS,
    bundled_file,
    materialize_bundled_dataset,
)

SHARED_BEAUTY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-beauty-5core"


def read_bundled(name: str, suffix: str) -> pd.DataFrame:
    with gzip.open(bundled_file(name, suffix), "rt", encoding="utf-8") as handle:
        return pd.read_csv(
            handle, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False
        )


def test_bundled_files_have_expected_sizes() -> None:
    assert BUNDLED_DATASETS == (
        "amazon-beauty",
        "amazon-beauty-sample",
        "amazon-scientific",
        "yelp",
    )
    full = read_bundled("amazon-beauty", "inter")
    assert full.shape == (198502, 3)
    assert full["user_id:token"].nunique() == 22363
    assert full["item_id:token"].nunique() == 12101
    assert len(read_bundled("amazon-beauty", "item")) == 12101

    sample = read_bundled(SAMPLE, "inter")
    sample_items = read_bundled(SAMPLE, "item")
    assert sample["user_id:token"].nunique() == 2000
    assert (len(sample), len(sample_items)) == (17663, 7463)
    assert set(sample_items["item_id:token"]) == set(sample["item_id:token"])
    # Full sequences: every sampled user keeps all their interactions, in the same order.
    chosen = full[full["user_id:token"].isin(set(sample["user_id:token"]))]
    assert chosen.reset_index(drop=True).equals(sample)
    scientific = read_bundled("amazon-scientific", "inter")
    assert scientific.shape == (58492, 3)
    assert scientific["user_id:token"].nunique() == 8317
    assert scientific["item_id:token"].nunique() == 4344
    yelp = read_bundled("yelp", "inter")
    assert yelp.shape == (316354, 3)
    assert yelp["user_id:token"].nunique() == 30431 and yelp["item_id:token"].nunique() == 20033
    pairs = yelp[["user_id:token", "item_id:token"]]
    assert pairs.duplicated().sum() == 11830  # repeat visits of an earlier pair
    assert len(read_bundled("yelp", "item")) == 20033
    scientific_items = read_bundled("amazon-scientific", "item")
    assert len(scientific_items) == 4344
    assert (scientific_items["description:token_seq"] != "").sum() == 4221
    total = sum(
        bundled_file(n, s).stat().st_size for n in BUNDLED_DATASETS for s in ("inter", "item")
    )
    assert total < 8_000_000  # the wheel stays small: four datasets in under 8 MB


def recbole_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load_col: dict):
    from recbole.config import Config

    monkeypatch.setattr(sys, "argv", ["pytest"])
    return Config(
        model="SASRec",
        dataset=SAMPLE,
        config_dict={
            "data_path": str(tmp_path),
            "load_col": load_col,
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
            "train_neg_sample_args": None,
            "loss_type": "CE",
        },
    )


def test_materialized_sample_loads_in_recbole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recbole.data import create_dataset

    load_col = {
        "inter": ["user_id", "item_id", "timestamp"],
        "item": ["item_id", "title", "brand", "price", "categories", "sales_rank"],
    }
    config = recbole_config(tmp_path, monkeypatch, load_col)
    dataset_dir = Path(config["data_path"])
    assert dataset_dir == tmp_path / SAMPLE
    assert materialize_bundled_dataset(SAMPLE, dataset_dir) is True
    inter = dataset_dir / f"{SAMPLE}.inter"
    item = dataset_dir / f"{SAMPLE}.item"
    with gzip.open(bundled_file(SAMPLE, "inter"), "rb") as packed:
        assert inter.read_bytes() == packed.read()

    dataset = create_dataset(config)
    assert dataset.user_num - 1 == 2000  # RecBole adds [PAD]
    assert dataset.item_num - 1 == 7463
    assert dataset.inter_num == 17663
    tokens = {"item_id", "title", "brand", "price", "categories", "sales_rank"}
    assert tokens <= set(dataset.item_feat.columns)

    before = (inter.stat().st_mtime_ns, item.stat().st_mtime_ns)
    assert materialize_bundled_dataset(SAMPLE, dataset_dir) is False
    assert (inter.stat().st_mtime_ns, item.stat().st_mtime_ns) == before


def test_unknown_name_is_left_to_recbole(tmp_path: Path) -> None:
    assert materialize_bundled_dataset("ml-100k", tmp_path / "ml-100k") is False
    assert not (tmp_path / "ml-100k").exists()


def test_interrupted_write_leaves_no_partial_inter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "nested" / SAMPLE
    real_copy = shutil.copyfileobj

    def interrupted(src: gzip.GzipFile, dst: io.BufferedIOBase) -> None:
        if str(src.name).endswith(f"{SAMPLE}.inter.gz"):
            dst.write(src.read(1000))
            raise KeyboardInterrupt
        real_copy(src, dst)

    monkeypatch.setattr(bundled.shutil, "copyfileobj", interrupted)
    with pytest.raises(KeyboardInterrupt):
        materialize_bundled_dataset(SAMPLE, target)
    assert sorted(path.name for path in target.iterdir()) == [f"{SAMPLE}.item"]

    monkeypatch.setattr(bundled.shutil, "copyfileobj", real_copy)
    assert materialize_bundled_dataset(SAMPLE, target) is True
    assert (target / f"{SAMPLE}.inter").read_text().count("\n") == 17664


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    if not (SHARED_BEAUTY / "reviews_Beauty_5core.json.gz").is_file():
        pytest.skip(f"shared Beauty data not found at {SHARED_BEAUTY} (clone shared/ beside repo)")
    from dataset_prep.make_bundled import make_bundled

    written = make_bundled(SHARED_BEAUTY, tmp_path)
    assert len(written) == 8
    for path in written:
        assert (
            path.read_bytes() == bundled_file(*path.name[: -len(".gz")].rsplit(".", 1)).read_bytes()
        )
