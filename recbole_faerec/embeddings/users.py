"""LLM user embeddings (LLM-ESR's retrieval): one prompt per user from the training items only.

A user's prompt lists the titles of the user's *training* items, newest first, so that a prompt
cut at ``user_embedding_max_length`` tokens drops the oldest items (LLM-ESR's official code keeps
the newest 8,000 characters of the chronological list). Validation and test items never reach it.
The vectors come from the run's embedding provider (``properties/embedding.yaml``) through the
per-prompt cache, and the table is written next to the item table as
``<data_path>/<dataset>.<model slug>-<hash>.users.npz`` (``users``: tokens, ``embeddings``,
``meta`` with the digest of the prompts): rebuilt only when the prompts change.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recbole_faerec.embeddings.cache import (
    CACHE_DIRNAME,
    EmbeddingCache,
    atomic_savez,
    embed_with_cache,
)
from recbole_faerec.embeddings.prompts import build_prompts, default_domain, read_item_file
from recbole_faerec.embeddings.providers import EmbeddingProvider, make_provider
from recbole_faerec.embeddings.table import (
    EmbeddingSettings,
    default_table_path,
    find_item_file,
    prompt_digest,
    read_meta,
)

logger = logging.getLogger(__name__)

USER_PROMPT = (
    "The user has interacted with the following {domain} items, most recent first: {items}. "
    "Please conclude the user's preference."
)


def item_names(data_path: str | Path, dataset: str, item_id_field: str = "item_id") -> dict:
    """Item token -> the text a user prompt lists: the item's ``title`` when the item file has
    that column and it is filled, else the item's own prompt."""
    item_file = find_item_file(data_path, dataset)
    tokens, prompts = build_prompts(item_file, dataset, item_id_field=item_id_field)
    names = dict(zip(tokens, prompts, strict=True))
    frame = read_item_file(item_file)
    if "title" in frame.columns:
        titles = zip(frame[item_id_field].str.strip(), frame["title"].str.strip(), strict=True)
        names.update({token: title for token, title in titles if title})
    return names


def user_prompt(history: Sequence[str], names: Mapping[str, str], domain: str) -> str:
    """The prompt of one user whose training items are ``history`` (item tokens, oldest first)."""
    items = ", ".join(names[token] for token in reversed(history))
    return USER_PROMPT.format(domain=domain, items=items)


def user_settings(config: Any) -> EmbeddingSettings:
    """The run's embedding settings with the user prompts' token limit."""
    settings = EmbeddingSettings.from_config(config)
    return dataclasses.replace(settings, max_length=int(config["user_embedding_max_length"]))


def user_table_path(
    data_path: str | Path, dataset: str, provider: EmbeddingProvider, settings: EmbeddingSettings
) -> Path:
    """``<data_path>/<dataset>.<model slug>-<hash>.users.npz``, beside the item table."""
    return default_table_path(data_path, dataset, provider, settings).with_suffix(".users.npz")


def build_user_table(
    config: Any,
    user_tokens: Sequence[str],
    histories: Sequence[Sequence[str]],
    show_progress: bool = True,
    provider: EmbeddingProvider | None = None,
) -> np.ndarray:
    """float32 (len(user_tokens), dim), row ``u`` the LLM embedding of ``user_tokens[u]``'s prompt
    built from ``histories[u]`` (item tokens, oldest first); a user with no history gets a zero
    row. The table is cached (see the module docstring)."""
    data_path, dataset = config["data_path"], config["dataset"]
    settings = user_settings(config)
    provider = provider or make_provider(settings)
    item_id_field = config["ITEM_ID_FIELD"] or "item_id"
    names = item_names(data_path, dataset, item_id_field)
    domain = settings.prompt_domain or default_domain(dataset)
    keep = [i for i, history in enumerate(histories) if len(history) > 0]
    tokens = [str(user_tokens[i]) for i in keep]
    prompts = [user_prompt(histories[i], names, domain) for i in keep]
    path = user_table_path(data_path, dataset, provider, settings)
    digest = prompt_digest(provider.identity(), tokens, prompts)
    if path.is_file() and read_meta(path).get("prompt_digest") == digest:
        with np.load(path, allow_pickle=False) as data:
            vectors = data["embeddings"]
    else:
        cache_root = Path(settings.cache_dir or Path(data_path) / CACHE_DIRNAME)
        cache = EmbeddingCache(cache_root, provider.identity())
        vectors, stats = embed_with_cache(prompts, provider, cache, show_progress)
        meta = {"dataset": dataset, "identity": provider.identity(), "prompt_digest": digest}
        atomic_savez(
            path,
            users=np.asarray(tokens, dtype=np.str_),
            embeddings=vectors.astype(np.float32, copy=False),
            meta=np.asarray(json.dumps(meta)),
        )
        logger.info(
            "LLM user embeddings: %d users (%d computed, %d cached) -> %s",
            len(tokens),
            stats.computed,
            stats.cached,
            path,
        )
    table = np.zeros((len(user_tokens), vectors.shape[1]), dtype=np.float32)
    table[keep] = vectors
    return table
