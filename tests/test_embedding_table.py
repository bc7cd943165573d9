"""The LLM item-embedding table: settings, building, resolving, token alignment and errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import AMAZON_HEADER, FakeProvider, fake_vector, write_item

from recbole_faerec.embeddings import table as table_module
from recbole_faerec.embeddings.prompts import build_prompts
from recbole_faerec.embeddings.table import (
    EmbeddingSettings,
    build_embedding_table,
    load_embedding_table,
    resolve_embedding_table,
)

YAML = Path(__file__).resolve().parents[1] / "properties" / "embedding.yaml"
ROWS = [
    ["A1", "Rose Lip Balm", "Acme", "5.5", "Beauty, Lips", ""],
    ["B2", "Shampoo", "", "", "Beauty, Hair Care", "Gentle."],
    ["C3", "Cologne", "Musk", "20", "", ""],
    ["D4", "Nail Polish Red", "", "3", "Beauty, Nails", ""],
]


def make_dataset(root: Path, rows=ROWS, name="amazon-beauty") -> Path:
    folder = root / name
    write_item(folder / f"{name}.item", AMAZON_HEADER, rows)
    return folder


@pytest.fixture
def fake(monkeypatch):
    """Make every table build use a FakeProvider; returns the list of providers created."""
    created: list[FakeProvider] = []

    def factory(settings):
        provider = FakeProvider(batch_size=settings.batch_size)
        created.append(provider)
        return provider

    monkeypatch.setattr(table_module, "make_provider", factory)
    return created


def test_yaml_defaults_equal_code_defaults():
    with open(YAML, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    keys = EmbeddingSettings.config_keys()
    assert set(data) == set(keys)
    defaults = EmbeddingSettings()
    for key, attr in keys.items():
        assert data[key] == getattr(defaults, attr), key
    text = YAML.read_text(encoding="utf-8")
    for key in keys:
        line = next(line for line in text.splitlines() if line.startswith(f"{key}:"))
        assert "# (" in line, f"{key} needs a '# (type) meaning' comment"


class RecBoleLikeConfig:
    """Mimics RecBole's Config: [] returns None for absent keys, `in` works."""

    def __init__(self, values):
        self.values = values

    def __getitem__(self, key):
        return self.values.get(key)

    def __contains__(self, key):
        return key in self.values


def test_settings_from_config_dict_and_recbole_like():
    values = {
        "embedding_provider": "openai",
        "embedding_max_length": "128",
        "embedding_api_retry_delay": 2,
        "embedding_allow_download": "true",
        "prompt_template": None,
        "unrelated": 1,
    }
    for config in (values, RecBoleLikeConfig(values)):
        settings = EmbeddingSettings.from_config(config)
        assert settings.provider == "openai" and settings.max_length == 128
        assert settings.api_retry_delay == 2.0 and settings.allow_download is True
        assert settings.prompt_template is None and settings.pooling == "mean"


def test_settings_from_a_real_recbole_config(tmp_path):
    from recbole.config import Config

    config = Config(
        model="SASRec",
        dataset="amazon-beauty",
        config_file_list=[str(YAML)],
        config_dict={
            "data_path": str(tmp_path),
            "embedding_pooling": "cls",
            "train_neg_sample_args": None,
        },
    )
    settings = EmbeddingSettings.from_config(config)
    assert settings.pooling == "cls" and settings.max_length == 64
    assert config["data_path"] == str(tmp_path / "amazon-beauty")


def test_build_writes_npz_without_pickle(tmp_path, fake):
    folder = make_dataset(tmp_path)
    result = build_embedding_table(EmbeddingSettings(batch_size=3), folder, "amazon-beauty")
    assert result.path.parent == folder and result.path.name.startswith("amazon-beauty.fake-v1-")
    assert (result.items, result.dim, result.stats.computed) == (4, 8, 4)
    with np.load(result.path, allow_pickle=False) as data:
        assert data["items"].dtype.kind == "U"
        assert data["items"].tolist() == ["A1", "B2", "C3", "D4"]
        assert data["embeddings"].dtype == np.float32 and data["embeddings"].shape == (4, 8)
    _, prompts = build_prompts(folder / "amazon-beauty.item", "amazon-beauty")
    table = load_embedding_table(result.path, ["A1", "B2", "C3", "D4"])
    np.testing.assert_allclose(table, np.stack([fake_vector(p) for p in prompts]), rtol=1e-6)


def test_token_alignment_ignores_file_order(tmp_path, fake):
    ordered = make_dataset(tmp_path / "a")
    shuffled = make_dataset(tmp_path / "b", rows=[ROWS[2], ROWS[0], ROWS[3], ROWS[1]])
    path_a = build_embedding_table(EmbeddingSettings(), ordered, "amazon-beauty").path
    path_b = build_embedding_table(EmbeddingSettings(), shuffled, "amazon-beauty").path
    with np.load(path_b, allow_pickle=False) as data:
        assert data["items"].tolist() == ["C3", "A1", "D4", "B2"]
    tokens = ["[PAD]", "D4", "A1", "C3", "B2"]
    table_a = load_embedding_table(path_a, tokens)
    table_b = load_embedding_table(path_b, np.array(tokens))
    np.testing.assert_array_equal(table_a, table_b)
    assert table_a.dtype == np.float32 and table_a.shape == (5, 8)
    assert not table_a[0].any()
    with np.load(path_a, allow_pickle=False) as data:
        np.testing.assert_array_equal(table_a[2], data["embeddings"][0])
        np.testing.assert_array_equal(table_a[1], data["embeddings"][3])


def test_missing_tokens_error_names_file_count_items_and_fix(tmp_path, fake):
    path = build_embedding_table(EmbeddingSettings(), make_dataset(tmp_path), "amazon-beauty").path
    tokens = ["[PAD]", "A1"] + [f"new{i}" for i in range(8)]
    with pytest.raises(ValueError) as info:
        load_embedding_table(path, tokens)
    message = str(info.value)
    assert str(path) in message and "8 of 10 items" in message
    assert "'new0'" in message and "'new4'" in message and "'new5'" not in message
    assert "fix:" in message


def test_resolve_builds_once_and_rebuilds_only_changed_items(tmp_path, fake):
    make_dataset(tmp_path)
    config = {"data_path": str(tmp_path / "amazon-beauty"), "dataset": "amazon-beauty"}
    path = resolve_embedding_table(config, show_progress=False)
    assert path.is_file() and fake[-1].seen and len(fake[-1].seen) == 4
    assert (tmp_path / "amazon-beauty" / ".faerec_embedding_cache").is_dir()
    mtime = path.stat().st_mtime_ns
    assert resolve_embedding_table(config, show_progress=False) == path
    assert path.stat().st_mtime_ns == mtime and fake[-1].seen == []

    rows = [list(r) for r in ROWS]
    rows[1][1] = "Volumizing Shampoo"
    make_dataset(tmp_path, rows=rows)
    assert resolve_embedding_table(config, show_progress=False) == path
    assert len(fake[-1].seen) == 1 and "Volumizing Shampoo" in fake[-1].seen[0]
    table = load_embedding_table(path, ["B2"])
    assert table.shape == (1, 8)

    other = resolve_embedding_table({**config, "prompt_domain": "cosmetics"}, show_progress=False)
    assert other != path and len(fake[-1].seen) == 4


def test_resolve_explicit_file_and_errors(tmp_path, fake):
    folder = make_dataset(tmp_path)
    built = build_embedding_table(EmbeddingSettings(), folder, "amazon-beauty").path
    config = {"data_path": str(folder), "dataset": "amazon-beauty"}
    assert resolve_embedding_table({**config, "llm_embedding_file": str(built)}) == built
    with pytest.raises(FileNotFoundError, match="llm_embedding_file .*nope.npz does not exist"):
        resolve_embedding_table({**config, "llm_embedding_file": str(tmp_path / "nope.npz")})
    with pytest.raises(FileNotFoundError, match="no item file .*other.item"):
        resolve_embedding_table({"data_path": str(tmp_path / "other"), "dataset": "other"})
    custom_cache = tmp_path / "my-cache"
    built.unlink()
    resolve_embedding_table({**config, "embedding_cache_dir": str(custom_cache)})
    assert any(custom_cache.rglob("chunk-*.npz"))


def test_not_a_table_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.arange(3))
    with pytest.raises(ValueError, match="not an embedding table"):
        load_embedding_table(bad, ["a"])


def test_default_path_changes_with_what_changes_vectors(tmp_path):
    base = EmbeddingSettings()
    provider = FakeProvider()
    paths = {
        table_module.default_table_path(tmp_path, "ds", provider, settings)
        for settings in (
            base,
            dataclasses.replace(base, prompt_template="yelp"),
            dataclasses.replace(base, prompt_domain="x"),
        )
    }
    paths.add(table_module.default_table_path(tmp_path, "ds", FakeProvider(tag="v2"), base))
    assert len(paths) == 4


def _write_table(path: Path, items, vectors) -> Path:
    np.savez(path, items=np.asarray(items), embeddings=np.asarray(vectors, dtype=np.float32))
    return path


@pytest.mark.parametrize(
    ("items", "vectors", "message"),
    [
        (["a", "b"], [[1.0, np.nan], [0.0, 1.0]], r"1 item vectors hold NaN or infinite .*'a'"),
        (["a", "b"], [[0.0, 0.0], [0.0, 0.0]], r"every item has the same vector"),
        (["a", "b", "a"], [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], r"1 items twice \(e\.g\. 'a'\)"),
    ],
)
def test_bad_table_values_are_refused_with_the_file_and_the_fix(tmp_path, items, vectors, message):
    path = _write_table(tmp_path / "t.npz", items, vectors)
    with pytest.raises(ValueError, match=message) as error:
        load_embedding_table(path, ["[PAD]", "a", "b"])
    assert str(path) in str(error.value) and "fix: " in str(error.value)


def test_a_finite_table_with_distinct_rows_loads(tmp_path):
    path = _write_table(tmp_path / "t.npz", ["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    table = load_embedding_table(path, ["[PAD]", "b", "a"])
    assert table.tolist() == [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
