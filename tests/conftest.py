"""Shared fixtures: a clean command line, a private working folder and the real sample data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from recbole_faerec.data.bundled import materialize_bundled_dataset

SAMPLE = "amazon-beauty-sample"


@pytest.fixture(autouse=True)
def _plain_command_line(monkeypatch):
    """RecBole's Config reads ``--key=value`` from sys.argv: keep pytest's flags out of it."""
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])


@pytest.fixture
def run_dir(tmp_path, monkeypatch) -> Path:
    """Run in a private folder: RecBole writes ``log/`` and ``log_tensorboard/`` to the cwd."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def sample_data_path(tmp_path_factory) -> Path:
    """A data_path holding the real bundled ``amazon-beauty-sample`` (and, once built, its
    LLM table, shared by every test of the session)."""
    root = tmp_path_factory.mktemp("data")
    materialize_bundled_dataset(SAMPLE, root / SAMPLE)
    return root


@pytest.fixture
def fast_config(sample_data_path, run_dir) -> dict:
    """Small, fast settings for end-to-end runs on the sample.

    Developers may set ``FAEREC_TEST_EMBEDDING_CACHE`` to a folder to keep the per-item vector
    cache across test sessions; CI leaves it unset and embeds the sample from scratch.
    """
    cache = os.environ.get("FAEREC_TEST_EMBEDDING_CACHE")
    return {
        "embedding_cache_dir": cache,
        "data_path": str(sample_data_path),
        "checkpoint_dir": str(run_dir / "saved"),
        "epochs": 1,
        "hidden_size": 32,
        "embedding_size": 32,
        "inner_size": 64,
        "n_layers": 1,
        "n_heads": 2,
        "MAX_ITEM_LIST_LENGTH": 10,
        "train_batch_size": 1024,
        "show_progress": False,
        "state": "WARNING",
        "seed": 7,
    }
