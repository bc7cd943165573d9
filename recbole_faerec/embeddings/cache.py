"""Per-prompt vector cache, so reruns and killed runs compute only what is missing.

Layout: ``<cache root>/<space>/chunk-*.npz`` where ``<space>`` is a hash of the provider identity
(provider, model, pooling, max length) and every chunk holds ``keys`` (uint8 (n, 32): sha256 of the
identity and the prompt text) and ``vectors`` (float32 (n, dim)). Chunks are written atomically
(temporary file + ``os.replace``) every ``chunk_size`` computed items, so a killed run loses at
most the chunk in progress; a changed prompt only misses its own key. Once a run ends with several
chunks they are merged into one so loading stays a handful of ``np.load`` calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recbole_faerec.embeddings.providers import EmbeddingError, EmbeddingProvider
from recbole_faerec.io import atomic_open

logger = logging.getLogger(__name__)

CACHE_DIRNAME = ".faerec_embedding_cache"
KEY_BYTES = 32


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


@dataclass
class CacheStats:
    """How many prompts were found in the cache and how many were computed."""

    total: int
    unique: int
    cached: int
    computed: int


class EmbeddingCache:
    """Vectors of one provider identity, keyed by sha256(identity, prompt)."""

    def __init__(self, root: str | os.PathLike, identity: dict[str, Any], chunk_size: int = 512):
        self.identity_json = json.dumps(identity, sort_keys=True)
        space = hashlib.sha256(self.identity_json.encode("utf-8")).hexdigest()[:16]
        self.dir = Path(root) / space
        self.chunk_size = chunk_size
        self._index: dict[bytes, int] = {}
        self._vectors: np.ndarray | None = None
        self._files: list[Path] = []

    def key(self, prompt: str) -> bytes:
        """Cache key of one prompt under this identity."""
        return hashlib.sha256(f"{self.identity_json}\n{prompt}".encode()).digest()

    @property
    def dim(self) -> int | None:
        """Vector dimension of what is cached (None when empty)."""
        return None if self._vectors is None else int(self._vectors.shape[1])

    def load(self) -> None:
        """Read every chunk of this identity into memory."""
        self._files = sorted(self.dir.glob("chunk-*.npz"))
        keys: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        for file in self._files:
            try:
                with np.load(file, allow_pickle=False) as data:
                    k, v = data["keys"], data["vectors"]
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring unreadable embedding cache chunk %s (%s)", file, exc)
                continue
            if k.ndim != 2 or k.shape[1] != KEY_BYTES or v.ndim != 2 or len(k) != len(v):
                logger.warning("ignoring malformed embedding cache chunk %s", file)
                continue
            if vectors and v.shape[1] != vectors[0].shape[1]:
                raise EmbeddingError(
                    f"embedding cache {self.dir} mixes dimensions {vectors[0].shape[1]} and "
                    f"{v.shape[1]}; fix: delete that folder and rerun"
                )
            keys.append(k)
            vectors.append(v)
        if not keys:
            self._index, self._vectors = {}, None
            return
        all_keys = np.concatenate(keys)
        self._vectors = np.concatenate(vectors).astype(np.float32, copy=False)
        self._index = {row.tobytes(): i for i, row in enumerate(all_keys)}

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(found mask, rows)``; rows index the loaded vectors (-1 when missing)."""
        rows = np.fromiter((self._index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        return rows >= 0, rows

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """Loaded vectors at ``rows``."""
        assert self._vectors is not None
        return self._vectors[rows]

    def write_chunk(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Persist computed vectors as one new chunk file."""
        if not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        identity_file = self.dir / "identity.json"
        if not identity_file.exists():
            identity_file.write_text(self.identity_json + "\n", encoding="utf-8")
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        name = f"chunk-{os.getpid()}-{uuid.uuid4().hex[:12]}.npz"
        atomic_savez(self.dir / name, keys=key_arr, vectors=vectors.astype(np.float32))

    def compact(self) -> None:
        """Merge the chunk files seen by the last ``load`` into one (safe with concurrent runs)."""
        files = [f for f in self._files if f.exists()]
        if len(files) < 2 or self._vectors is None:
            return
        keys = sorted(self._index.items(), key=lambda kv: kv[1])
        key_arr = np.frombuffer(b"".join(k for k, _ in keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        rows = np.fromiter((i for _, i in keys), dtype=np.int64, count=len(keys))
        name = f"chunk-{os.getpid()}-{uuid.uuid4().hex[:12]}.npz"
        atomic_savez(self.dir / name, keys=key_arr, vectors=self._vectors[rows])
        for file in files:
            file.unlink(missing_ok=True)
        self._files = [self.dir / name]


def embed_with_cache(
    prompts: Sequence[str],
    provider: EmbeddingProvider,
    cache: EmbeddingCache,
    show_progress: bool = True,
) -> tuple[np.ndarray, CacheStats]:
    """Vectors for ``prompts`` (in order), computing and caching only the missing ones.

    Missing prompts are embedded in the provider's batch order (``embed_batches``: similar lengths
    together, so batches pad little); a chunk is written every ``cache.chunk_size`` vectors.
    """
    cache.load()
    unique = list(dict.fromkeys(prompts))
    keys = [cache.key(p) for p in unique]
    found, _ = cache.get(keys)
    missing = [i for i in range(len(unique)) if not found[i]]
    if cache.dim is not None:
        provider.dim = cache.dim
    pending_keys: list[bytes] = []
    pending_vectors: list[np.ndarray] = []

    def flush() -> None:
        if pending_keys:
            cache.write_chunk(pending_keys, np.concatenate(pending_vectors))
            pending_keys.clear()
            pending_vectors.clear()

    if missing:
        bar = tqdm(
            total=len(missing), unit="item", desc="embedding items", disable=not show_progress
        )
        try:
            for positions, vectors in provider.embed_batches([unique[i] for i in missing]):
                pending_vectors.append(vectors)
                pending_keys.extend(keys[missing[j]] for j in positions)
                if len(pending_keys) >= cache.chunk_size:
                    flush()
                bar.update(len(positions))
        finally:
            flush()
            bar.close()
        cache.load()
        cache.compact()
    found, rows = cache.get(keys)
    if not found.all():
        raise EmbeddingError(
            f"embedding cache {cache.dir} lost {int((~found).sum())} vectors while running; fix: "
            "make sure nothing else deletes files in that folder, and rerun"
        )
    by_prompt = dict(zip(unique, rows.tolist(), strict=True))
    vectors = cache.vectors(np.fromiter((by_prompt[p] for p in prompts), np.int64, len(prompts)))
    stats = CacheStats(len(prompts), len(unique), len(unique) - len(missing), len(missing))
    return vectors, stats
