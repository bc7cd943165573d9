"""Shared fixtures and fakes: a clean command line, a private working folder, the real sample data,
one torch thread, and a fake embedding provider and item-file writer for the embedding tests."""

from __future__ import annotations

import hashlib
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_faerec.data.bundled import materialize_bundled_dataset
from recbole_faerec.embeddings.providers import EmbeddingProvider

SAMPLE = "amazon-beauty-sample"


def same_metrics(first: dict, second: dict) -> bool:
    """Equal metric dicts, an empty group's nan included."""
    return first.keys() == second.keys() and all(
        first[k] == second[k] or (math.isnan(first[k]) and math.isnan(second[k])) for k in first
    )


AMAZON_HEADER = [
    "item_id:token",
    "title:token_seq",
    "brand:token",
    "price:float",
    "categories:token_seq",
    "description:token_seq",
]


def write_item(path, header, rows):
    """Write a RecBole .item file (tab-separated, no quoting) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class FakeProvider(EmbeddingProvider):
    """Deterministic vectors from the text hash; records what it embedded; can fail on demand."""

    name = "fake"

    def __init__(self, batch_size=4, dim=8, fail_after_batches=None, tag="v1"):
        super().__init__(batch_size)
        self.out_dim = dim
        self.fail_after_batches = fail_after_batches
        self.tag = tag
        self.seen: list[str] = []
        self.batches = 0

    def identity(self):
        return {"provider": self.name, "model": self.tag, "dim": self.out_dim}

    def slug(self):
        return f"fake-{self.tag}"

    def _embed(self, texts):
        if self.fail_after_batches is not None and self.batches >= self.fail_after_batches:
            raise RuntimeError("simulated crash")
        self.batches += 1
        self.seen.extend(texts)
        return np.stack([fake_vector(t, self.out_dim) for t in texts])


def fake_vector(text: str, dim: int = 8) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    vec = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return vec / np.linalg.norm(vec)


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


#: A small model on short prompts and sequences, quiet: the part of ``fast_config`` that needs no
#: fixture (module-scoped fixtures build their runs from it too).
SMALL_MODEL = {
    "embedding_max_length": 32,
    "hidden_size": 32,
    "embedding_size": 32,
    "inner_size": 64,
    "n_layers": 1,
    "n_heads": 2,
    "MAX_ITEM_LIST_LENGTH": 10,
    "show_progress": False,
    "state": "WARNING",
    "seed": 7,
}


@pytest.fixture
def fast_config(sample_data_path, run_dir) -> dict:
    """Small, fast settings for end-to-end runs on the sample.

    The sample is embedded with the real packaged model, prompts cut at 32 tokens (half of the
    default 64); the text prior fits one transition epoch and chooses between weights 0 and 12.
    Developers may set ``FAEREC_TEST_EMBEDDING_CACHE`` to a folder to keep the
    per-item vector cache across test sessions; CI leaves it unset and embeds the sample from
    scratch.
    """
    return {
        **SMALL_MODEL,
        "embedding_cache_dir": os.environ.get("FAEREC_TEST_EMBEDDING_CACHE"),
        "data_path": str(sample_data_path),
        "checkpoint_dir": str(run_dir / "saved"),
        "epochs": 1,
        "train_batch_size": 1024,
        "text_prior_transition_epochs": 1,
        "text_prior_weights": [0, 12],
    }


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test: on a small, shared CPU, torch's thread pool
    competing with other processes makes tiny models an order of magnitude slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
