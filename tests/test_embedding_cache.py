"""Per-prompt embedding cache: hits and misses, changed prompts, resume after a crash or a kill."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import FakeProvider, fake_vector

from recbole_faerec.embeddings.cache import EmbeddingCache, atomic_savez, embed_with_cache
from recbole_faerec.embeddings.providers import EmbeddingError

PROMPTS = [f"prompt number {i} " + "x" * (i % 7) for i in range(20)]


def test_cache_hits_misses_and_changed_prompt(tmp_path):
    first = FakeProvider()
    vecs, stats = embed_with_cache(PROMPTS, first, EmbeddingCache(tmp_path, first.identity()))
    assert (stats.cached, stats.computed) == (0, 20)
    assert sorted(first.seen) == sorted(PROMPTS)
    np.testing.assert_allclose(vecs[3], fake_vector(PROMPTS[3]), rtol=1e-6)

    again = FakeProvider()
    vecs2, stats = embed_with_cache(PROMPTS, again, EmbeddingCache(tmp_path, again.identity()))
    assert (stats.cached, stats.computed) == (20, 0) and again.seen == []
    np.testing.assert_array_equal(vecs, vecs2)

    changed = list(PROMPTS)
    changed[5] = "a brand new prompt"
    third = FakeProvider()
    vecs3, stats = embed_with_cache(changed, third, EmbeddingCache(tmp_path, third.identity()))
    assert (stats.cached, stats.computed) == (19, 1)
    assert third.seen == ["a brand new prompt"]
    np.testing.assert_allclose(vecs3[5], fake_vector("a brand new prompt"), rtol=1e-6)
    np.testing.assert_array_equal(np.delete(vecs3, 5, 0), np.delete(vecs, 5, 0))

    other_model = FakeProvider(tag="v2")
    _, stats = embed_with_cache(
        PROMPTS, other_model, EmbeddingCache(tmp_path, other_model.identity())
    )
    assert stats.computed == 20


def test_duplicate_prompts_are_computed_once(tmp_path):
    provider = FakeProvider()
    prompts = ["same", "other", "same"]
    vecs, stats = embed_with_cache(prompts, provider, EmbeddingCache(tmp_path, provider.identity()))
    assert stats.unique == 2 and sorted(provider.seen) == ["other", "same"]
    np.testing.assert_array_equal(vecs[0], vecs[2])


def test_vectors_follow_the_prompts_whatever_order_the_provider_batches_in(tmp_path):
    class Reversed(FakeProvider):
        def embed_batches(self, texts):
            order = list(range(len(texts)))[::-1]
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                yield batch, self.embed([texts[i] for i in batch])

    warm = FakeProvider()
    embed_with_cache(PROMPTS[::3], warm, EmbeddingCache(tmp_path, warm.identity()), False)
    provider = Reversed(batch_size=3)
    cache = EmbeddingCache(tmp_path, provider.identity())
    vecs, stats = embed_with_cache(PROMPTS, provider, cache, show_progress=False)
    assert (stats.cached, stats.computed) == (7, 13)
    assert provider.seen == [p for i, p in enumerate(PROMPTS) if i % 3][::-1]
    np.testing.assert_allclose(vecs, np.stack([fake_vector(p) for p in PROMPTS]), rtol=1e-6)


def test_crash_midway_keeps_finished_batches_and_resume_computes_the_rest(tmp_path):
    crashing = FakeProvider(batch_size=4, fail_after_batches=3)
    cache = EmbeddingCache(tmp_path, crashing.identity(), chunk_size=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        embed_with_cache(PROMPTS, crashing, cache, show_progress=False)
    assert len(crashing.seen) == 12

    resumed = FakeProvider(batch_size=4)
    vecs, stats = embed_with_cache(
        PROMPTS, resumed, EmbeddingCache(tmp_path, resumed.identity(), chunk_size=4)
    )
    assert (stats.cached, stats.computed) == (12, 8)
    assert not set(resumed.seen) & set(crashing.seen)
    np.testing.assert_allclose(vecs, np.stack([fake_vector(p) for p in PROMPTS]), rtol=1e-6)
    assert len(list(resumed_dir(tmp_path).glob("chunk-*.npz"))) == 1  # compacted


def resumed_dir(root):
    (space,) = [d for d in root.iterdir() if d.is_dir()]
    return space


KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {tests!r})
    from conftest import FakeProvider
    from test_embedding_cache import PROMPTS
    from recbole_faerec.embeddings.cache import EmbeddingCache, embed_with_cache

    class Killed(FakeProvider):
        def _embed(self, texts):
            if self.batches == 5:
                os._exit(9)  # a hard kill: no finally blocks, no flush
            return super()._embed(texts)

    p = Killed(batch_size=2)
    embed_with_cache(PROMPTS, p, EmbeddingCache({root!r}, p.identity(), chunk_size=4), False)
    """
)


def test_hard_kill_loses_at_most_the_current_chunk(tmp_path):
    from pathlib import Path

    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()
    # 5 batches of 2 finished; chunks of 4 were written after batches 2 and 4.
    resumed = FakeProvider(batch_size=2)
    _, stats = embed_with_cache(
        PROMPTS, resumed, EmbeddingCache(tmp_path, resumed.identity(), chunk_size=4), False
    )
    assert (stats.cached, stats.computed) == (8, 12)
    assert not list(tmp_path.rglob("*.tmp"))


def test_unreadable_chunk_is_ignored_and_dimension_mismatch_is_an_error(tmp_path):
    provider = FakeProvider()
    cache = EmbeddingCache(tmp_path, provider.identity())
    embed_with_cache(PROMPTS[:4], provider, cache)
    (cache.dir / "chunk-broken.npz").write_bytes(b"not a zip file")
    _, stats = embed_with_cache(PROMPTS[:4], FakeProvider(), EmbeddingCache(tmp_path, cache_id()))
    assert stats.cached == 4

    wrong_dim = FakeProvider(dim=5)
    wrong_cache = EmbeddingCache(tmp_path, provider.identity())
    with pytest.raises(EmbeddingError, match="dimension 5, expected 8"):
        embed_with_cache(PROMPTS[:6], wrong_dim, wrong_cache)


def cache_id():
    return FakeProvider().identity()


def test_atomic_savez_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "t.npz"
    atomic_savez(target, a=np.arange(3))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_savez(target, a=np.arange(5))
    with np.load(target, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["a"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]
