"""The frozen LLM item-embedding table: settings, building, resolving and loading the ``.npz``.

The table is one ``.npz`` (no pickle) with ``items`` (item tokens, unicode), ``embeddings``
(float32, one L2-normalised row per item, in ``items`` order) and ``meta`` (a JSON string with the
settings and a digest of the prompts it was built from). Rows are matched to RecBole ids through
the item token, never through file order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recbole_faerec.embeddings.cache import (
    CACHE_DIRNAME,
    CacheStats,
    EmbeddingCache,
    atomic_savez,
    embed_with_cache,
)
from recbole_faerec.embeddings.prompts import build_prompts
from recbole_faerec.embeddings.providers import (
    DEFAULT_MAX_LENGTH,
    EmbeddingProvider,
    make_provider,
)

logger = logging.getLogger(__name__)

PAD_TOKEN = "[PAD]"


def _key(name: str) -> Any:
    return {"config_key": name}


@dataclass
class EmbeddingSettings:
    """Embedding settings and their defaults (the source of ``properties/embedding.yaml``)."""

    embedding_file: str | None = field(default=None, metadata=_key("llm_embedding_file"))
    provider: str = field(default="hf", metadata=_key("embedding_provider"))
    model: str | None = field(default=None, metadata=_key("embedding_model"))
    pooling: str = field(default="mean", metadata=_key("embedding_pooling"))
    max_length: int = field(default=DEFAULT_MAX_LENGTH, metadata=_key("embedding_max_length"))
    batch_size: int = field(default=64, metadata=_key("embedding_batch_size"))
    prompt_template: str | None = field(default=None, metadata=_key("prompt_template"))
    prompt_domain: str | None = field(default=None, metadata=_key("prompt_domain"))
    api_base: str = field(default="https://api.openai.com/v1", metadata=_key("embedding_api_base"))
    api_key_env: str = field(default="OPENAI_API_KEY", metadata=_key("embedding_api_key_env"))
    api_max_attempts: int = field(default=5, metadata=_key("embedding_api_max_attempts"))
    api_retry_delay: float = field(default=1.0, metadata=_key("embedding_api_retry_delay"))
    api_timeout: float = field(default=60.0, metadata=_key("embedding_api_timeout"))
    allow_download: bool = field(default=False, metadata=_key("embedding_allow_download"))
    device: str = field(default="auto", metadata=_key("embedding_device"))
    half: bool = field(default=False, metadata=_key("embedding_half"))
    cache_dir: str | None = field(default=None, metadata=_key("embedding_cache_dir"))

    @classmethod
    def config_keys(cls) -> dict[str, str]:
        """Map config key (as in the yaml) -> attribute name."""
        return {f.metadata["config_key"]: f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_config(cls, config: Any) -> EmbeddingSettings:
        """Read settings from a RecBole ``Config`` or a dict; absent or null keys keep defaults."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = _lookup(config, f.metadata["config_key"])
            if value is None:
                continue
            default = f.default
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in {"1", "true"}
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            else:
                value = str(value)
            values[f.name] = value
        return cls(**values)


def _lookup(config: Any, key: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(key)
    return config[key] if key in config else None


@dataclass
class BuildResult:
    """What ``build_embedding_table`` did."""

    path: Path
    items: int
    dim: int
    stats: CacheStats
    seconds: float
    rebuilt: bool


def find_item_file(data_path: str | Path, dataset: str) -> Path:
    """``<data_path>/<dataset>.item`` (or ``.item.gz``); a clear error when neither exists."""
    folder = Path(data_path)
    for name in (f"{dataset}.item", f"{dataset}.item.gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"no item file {folder / (dataset + '.item')} (or .item.gz); LLM item embeddings are "
        "built from the item texts (for FAERec and the text prior); fix: create the atomic files "
        "with dataset_prep, or check data_path and dataset; a bare backbone runs without item "
        "texts with --text_prior=False"
    )


def prompt_digest(identity: dict[str, Any], tokens: Sequence[str], prompts: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    for token, prompt in zip(tokens, prompts, strict=True):
        digest.update(f"\0{token}\t{prompt}".encode())
    return digest.hexdigest()


def default_table_path(
    data_path: str | Path, dataset: str, provider: EmbeddingProvider, settings: EmbeddingSettings
) -> Path:
    """``<data_path>/<dataset>.<model slug>-<hash>.npz``; the hash covers everything that changes
    the vectors (provider identity, prompt template and domain)."""
    parts = {
        "identity": provider.identity(),
        "template": settings.prompt_template,
        "domain": settings.prompt_domain,
    }
    short = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]
    return Path(data_path) / f"{dataset}.{provider.slug()}-{short}.npz"


def read_meta(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"])) if "meta" in data.files else {}
    except (OSError, ValueError, KeyError):
        return {}


def build_embedding_table(
    settings: EmbeddingSettings,
    data_path: str | Path,
    dataset: str,
    out: str | Path | None = None,
    show_progress: bool = True,
    provider: EmbeddingProvider | None = None,
    item_id_field: str = "item_id",
    force: bool = False,
) -> BuildResult:
    """Render prompts, embed them through the cache and write the ``.npz`` atomically.

    An existing output built from the same prompts and settings is kept unless ``force``.
    """
    start = time.perf_counter()
    provider = provider or make_provider(settings)
    item_file = find_item_file(data_path, dataset)
    tokens, prompts = build_prompts(
        item_file, dataset, settings.prompt_template, settings.prompt_domain, item_id_field
    )
    if out is None:
        out = default_table_path(data_path, dataset, provider, settings)
    out = Path(out)
    digest = prompt_digest(provider.identity(), tokens, prompts)
    if not force and out.is_file() and read_meta(out).get("prompt_digest") == digest:
        meta = read_meta(out)
        stats = CacheStats(len(prompts), len(set(prompts)), len(set(prompts)), 0)
        return BuildResult(out, len(tokens), meta.get("dim", 0), stats, 0.0, rebuilt=False)
    cache_root = Path(settings.cache_dir) if settings.cache_dir else Path(data_path) / CACHE_DIRNAME
    cache = EmbeddingCache(cache_root, provider.identity())
    vectors, stats = embed_with_cache(prompts, provider, cache, show_progress)
    meta = {
        "dataset": dataset,
        "item_file": item_file.name,
        "identity": provider.identity(),
        "prompt_template": settings.prompt_template,
        "prompt_domain": settings.prompt_domain,
        "prompt_digest": digest,
        "dim": int(vectors.shape[1]),
    }
    atomic_savez(
        out,
        items=np.asarray(tokens, dtype=np.str_),
        embeddings=vectors.astype(np.float32, copy=False),
        meta=np.asarray(json.dumps(meta)),
    )
    seconds = time.perf_counter() - start
    return BuildResult(out, len(tokens), int(vectors.shape[1]), stats, seconds, rebuilt=True)


def resolve_embedding_table(config: Any, show_progress: bool = True) -> Path:
    """Return the .npz for the run's dataset and embedding settings, building and caching it if
    missing (or stale: built from other prompts)."""
    settings = EmbeddingSettings.from_config(config)
    if settings.embedding_file:
        path = Path(settings.embedding_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"llm_embedding_file {path} does not exist; fix: build it with `python -m "
                "dataset_prep.embed --data-path DIR --dataset NAME --out FILE`, or set "
                "llm_embedding_file: null to build and cache one automatically"
            )
        return path
    data_path, dataset = _lookup(config, "data_path"), _lookup(config, "dataset")
    if not data_path or not dataset:
        raise ValueError("resolve_embedding_table needs 'data_path' and 'dataset' in the config")
    item_id_field = _lookup(config, "ITEM_ID_FIELD") or "item_id"
    result = build_embedding_table(
        settings, data_path, dataset, show_progress=show_progress, item_id_field=item_id_field
    )
    if result.rebuilt:
        logger.info(
            "LLM item embeddings: %d items (%d computed, %d cached) -> %s",
            result.items,
            result.stats.computed,
            result.stats.cached,
            result.path,
        )
    return result.path


def load_embedding_table(path: str | Path, item_tokens: Sequence[str]) -> np.ndarray:
    """float32 array (len(item_tokens), dim): row i is the vector of item_tokens[i]; the RecBole
    padding token '[PAD]' (index 0) gets a zero row; raises ValueError naming the file, the number
    of missing items and a few of them, and the fix, when the .npz does not cover all tokens."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            items = data["items"]
            embeddings = data["embeddings"]
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"{path} is not an embedding table (.npz with 'items' and 'embeddings'): {exc}; fix: "
            "rebuild it with `python -m dataset_prep.embed`"
        ) from None
    if embeddings.ndim != 2 or len(items) != len(embeddings):
        raise ValueError(
            f"{path}: 'items' ({len(items)}) and 'embeddings' {embeddings.shape} do not match; "
            "fix: rebuild it with `python -m dataset_prep.embed`"
        )
    index = {str(token): i for i, token in enumerate(items.tolist())}
    if len(index) != len(items):
        twice = [t for t, n in Counter(map(str, items.tolist())).items() if n > 1]
        raise ValueError(
            f"{path} holds {len(items) - len(index)} items twice (e.g. {twice[0]!r}), so which row "
            "belongs to the item is ambiguous; fix: keep one row per item (rebuild it with "
            "`python -m dataset_prep.embed`)"
        )
    tokens = [str(t) for t in item_tokens]
    rows = np.fromiter((index.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))
    is_pad = np.fromiter((t == PAD_TOKEN for t in tokens), dtype=bool, count=len(tokens))
    missing = [t for t, r, pad in zip(tokens, rows, is_pad, strict=True) if r < 0 and not pad]
    if missing:
        shown = ", ".join(repr(t) for t in missing[:5])
        raise ValueError(
            f"{path} has no vector for {len(missing)} of {len(tokens)} items (e.g. {shown}); "
            "fix: rebuild the table from the dataset's current .item file (delete it, or set "
            "llm_embedding_file: null so it is rebuilt), and make sure every item in the "
            ".inter file has a row in the .item file"
        )
    table = np.zeros((len(tokens), embeddings.shape[1]), dtype=np.float32)
    keep = ~is_pad
    table[keep] = embeddings[rows[keep]]
    _check_values(path, table[keep], [t for t, pad in zip(tokens, is_pad, strict=True) if not pad])
    return table


def _check_values(path: Path, vectors: np.ndarray, tokens: Sequence[str]) -> None:
    """The dataset's item vectors must be finite and must differ from one another."""
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        shown = ", ".join(repr(t) for t in np.asarray(tokens, dtype=object)[bad][:5])
        raise ValueError(
            f"{path}: {int(bad.sum())} item vectors hold NaN or infinite values (e.g. {shown}); "
            "fix: rebuild the table with `python -m dataset_prep.embed` (check the embedding "
            "model's output for those items' prompts)"
        )
    if len(vectors) > 1 and np.ptp(vectors, axis=0).max() == 0:
        raise ValueError(
            f"{path}: every item has the same vector (e.g. all zeros), so the LLM view carries no "
            "information; fix: rebuild the table with `python -m dataset_prep.embed` from item "
            "texts that differ"
        )
