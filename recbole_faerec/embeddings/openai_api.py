"""The OpenAI-compatible embedding provider: ``POST {api_base}/embeddings`` with stdlib ``urllib``,
retrying rate limits and server errors."""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any

from recbole_faerec.embeddings.providers import (
    DEFAULT_OPENAI_MODEL,
    EmbeddingError,
    EmbeddingProvider,
    slugify,
)

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))


class OpenAIProvider(EmbeddingProvider):
    """Any OpenAI-compatible ``POST {api_base}/embeddings`` endpoint, with stdlib ``urllib``.

    The key is read from the environment variable ``api_key_env`` only when a request is made; it
    is sent as a bearer token and never logged or put in error messages.
    """

    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        api_base: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        batch_size: int = 64,
        max_attempts: int = 5,
        retry_delay: float = 1.0,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(batch_size)
        self.model_name = model or DEFAULT_OPENAI_MODEL
        self.url = api_base.rstrip("/") + "/embeddings"
        self.api_key_env = api_key_env
        self.max_attempts = max(1, int(max_attempts))
        self.retry_delay = float(retry_delay)
        self.timeout = float(timeout)

    def identity(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model_name, "url": self.url}

    def slug(self) -> str:
        return slugify(f"{self.model_name}-openai")

    def _key(self) -> str:
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise EmbeddingError(
                f"environment variable {self.api_key_env} is not set or empty; fix: export "
                f"{self.api_key_env}=<your API key> (or set embedding_api_key_env to the "
                "variable that holds it)"
            )
        return key

    def _post(self, payload: bytes, key: str) -> bytes:
        request = urllib.request.Request(
            self.url,
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            delay = self.retry_delay * 2 ** (attempt - 1)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                body = exc.read()[:200].decode("utf-8", "replace").replace(key, "***")
                last = f"HTTP {exc.code} {exc.reason}: {body}"
                if exc.code not in RETRY_STATUS:
                    raise EmbeddingError(
                        f"embedding request to {self.url} failed: {last}"
                    ) from None
                retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
                if retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), 60.0))
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"connection error: {reason}"
            if attempt < self.max_attempts:
                logger.warning(
                    "embedding request to %s failed (%s); retry %d/%d in %.1fs",
                    self.url,
                    last,
                    attempt,
                    self.max_attempts - 1,
                    delay,
                )
                time.sleep(delay)
        raise EmbeddingError(
            f"embedding request to {self.url} failed after {self.max_attempts} attempts; last "
            f"error: {last}"
        )

    def _embed(self, texts: list[str]) -> list[list[float]]:
        key = self._key()
        payload = json.dumps({"model": self.model_name, "input": texts}).encode("utf-8")
        raw = self._post(payload, key)
        try:
            data = json.loads(raw)["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
            items = sorted(data, key=lambda d: d.get("index", 0)) if data else data
            return [item["embedding"] for item in items]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbeddingError(
                f"embedding response from {self.url} is not an OpenAI embeddings answer "
                f"(expected {{'data': [{{'embedding': [...], 'index': i}}]}}): {exc}"
            ) from None
