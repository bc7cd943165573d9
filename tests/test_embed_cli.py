"""``python -m dataset_prep.embed``: same code path as training runs, path printed last."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import AMAZON_HEADER, FakeProvider, write_item

from dataset_prep import embed
from recbole_faerec.embeddings import table as table_module
from recbole_faerec.embeddings.table import load_embedding_table, resolve_embedding_table

REPO = Path(__file__).resolve().parents[1]
ROWS = [
    ["i1", "Rose Lip Balm", "Acme", "5.5", "Beauty, Makeup, Lips", ""],
    ["i2", "Cherry Lip Gloss", "Glow", "", "Beauty, Makeup, Lips", ""],
    ["i3", "Anti-Dandruff Shampoo", "", "7", "Beauty, Hair Care, Shampoos", ""],
]


@pytest.fixture
def data_root(tmp_path):
    write_item(tmp_path / "amazon-beauty" / "amazon-beauty.item", AMAZON_HEADER, ROWS)
    return tmp_path


def test_cli_in_process_matches_resolve(data_root, monkeypatch, capsys):
    monkeypatch.setattr(table_module, "make_provider", lambda s: FakeProvider(s.batch_size))
    argv = ["--data-path", str(data_root), "--dataset", "amazon-beauty", "--batch-size", "2"]
    assert embed.main(argv + ["--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    path = Path(lines[-1])
    assert path.is_file() and "computed: 3" in lines[0] and "items: 3" in lines[0]
    config = {"data_path": str(data_root / "amazon-beauty"), "dataset": "amazon-beauty"}
    assert resolve_embedding_table(config) == path

    assert embed.main(argv + ["--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "up to date" in lines[0] and Path(lines[-1]) == path

    out = data_root / "custom.npz"
    assert embed.main(argv + ["--out", str(out), "--domain", "cosmetics", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)


def test_settings_from_args_overrides_only_given_options():
    args = embed.parse_args(
        ["--data-path", "d", "--dataset", "x", "--pooling", "cls", "--template", "yelp"]
    )
    settings = embed.settings_from_args(args)
    assert settings.pooling == "cls" and settings.prompt_template == "yelp"
    assert settings.provider == "hf" and settings.max_length == 64


def test_cli_subprocess_with_packaged_minilm(data_root):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "dataset_prep.embed", "--data-path", str(data_root)]
    cmd += ["--dataset", "amazon-beauty", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.name.startswith("amazon-beauty.all-MiniLM-L6-v2-mean-len64-")
    table = load_embedding_table(path, ["[PAD]", "i1", "i2", "i3"])
    assert table.shape == (4, 384) and not table[0].any()
    np.testing.assert_allclose(np.linalg.norm(table[1:], axis=1), 1.0, atol=1e-5)
    assert table[1] @ table[2] > table[1] @ table[3]


def test_cli_bad_model_path_fails_clearly(data_root, capsys):
    with pytest.raises(FileNotFoundError, match="missing-model.*does not exist"):
        embed.main(
            ["--data-path", str(data_root), "--dataset", "amazon-beauty"]
            + ["--model", str(data_root / "missing-model")]
        )


def test_cli_writes_a_bundled_dataset_first(tmp_path, monkeypatch):
    seen = {}

    def fake_build(settings, dataset_dir, dataset, **kwargs):
        seen["files"] = sorted(path.name for path in Path(dataset_dir).iterdir())
        raise SystemExit(0)

    monkeypatch.setattr(embed, "build_embedding_table", fake_build)
    with pytest.raises(SystemExit):
        embed.main(["--data-path", str(tmp_path), "--dataset", "amazon-scientific"])
    assert seen["files"] == ["amazon-scientific.inter", "amazon-scientific.item"]
