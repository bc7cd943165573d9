"""Embedding providers: the packaged MiniLM (hf and sentence-transformers), output validation, and
the OpenAI-compatible client against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
import math
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from recbole_faerec.embeddings import providers
from recbole_faerec.embeddings.openai_api import OpenAIProvider
from recbole_faerec.embeddings.providers import (
    EmbeddingError,
    HFProvider,
    SentenceTransformersProvider,
    cpu_threads,
    make_provider,
    resolve_device,
    resolve_local_model,
    validate_vectors,
)
from recbole_faerec.model import precision

TEXTS = [
    "The beauty item has the following attributes: name is Rose Lip Balm; brand is Acme. "
    "The item has following features: Beauty, Makeup, Lips.",
    "The beauty item has the following attributes: name is Cherry Lip Gloss; brand is Glow. "
    "The item has following features: Beauty, Makeup, Lips.",
    "The beauty item has the following attributes: name is Anti-Dandruff Shampoo. "
    "The item has following features: Beauty, Hair Care, Shampoos.",
    "The beauty item has the following attributes: name is Men's Cologne Spray 3.4 oz. "
    "The item has following features: Beauty, Fragrance, Men's.",
]

#: Prompts of very different token counts (one cut at max_length), in no particular order.
MIXED = [
    "Lip balm.",
    TEXTS[0] + " The item has following descriptions: " + "A rich balm for dry lips. " * 12,
    "Shampoo for dry, frizzy hair; 12 oz bottle.",
    TEXTS[2],
    "Cologne",
    TEXTS[3] + " Long-lasting woody scent with notes of cedar.",
    "Nail polish remover pads, acetone free, 32 count.",
]


@pytest.fixture(scope="module")
def minilm_vectors():
    provider = HFProvider(batch_size=3)
    return provider, provider.embed(TEXTS)


def test_hf_minilm_shape_norm_and_similarity(minilm_vectors):
    provider, vecs = minilm_vectors
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.1 and sims[0, 1] > sims[0, 3] + 0.1
    assert provider.dim == 384
    assert provider.slug() == "all-MiniLM-L6-v2-mean-len64"
    assert provider.identity()["model"].startswith("local:")


def test_hf_batching_and_padding_do_not_change_vectors(minilm_vectors):
    provider, vecs = minilm_vectors
    one_by_one = np.concatenate([provider.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, vecs, atol=1e-5)


def test_hf_length_sorted_batches_keep_each_prompt_on_its_row(minilm_vectors):
    provider, _ = minilm_vectors
    assert provider.batch_size == 3
    batched = provider.embed(MIXED)
    one_by_one = np.concatenate([provider.embed([t]) for t in MIXED])
    unsorted = provider._checked(provider._embed(list(MIXED)), len(MIXED))
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    np.testing.assert_allclose(batched, unsorted, atol=1e-5)
    assert (np.argmax(batched @ one_by_one.T, axis=1) == np.arange(len(MIXED))).all()

    yielded = list(provider.embed_batches(MIXED))
    positions = [i for batch, _ in yielded for i in batch]
    assert sorted(positions) == list(range(len(MIXED))) and positions != sorted(positions)
    tokens = provider._tokenizer(MIXED, truncation=True, max_length=provider.max_length)
    lengths = [len(ids) for ids in tokens["input_ids"]]
    assert max(lengths) == provider.max_length and len(set(lengths)) == len(MIXED)
    assert [lengths[i] for i in positions] == sorted(lengths, reverse=True)
    assert [len(batch) for batch, _ in yielded] == [3, 3, 1]
    for batch, vectors in yielded:
        np.testing.assert_allclose(vectors, one_by_one[batch], atol=1e-5)
    assert provider.embed([]).shape == (0, 384) and list(provider.embed_batches([])) == []


def test_cpu_threads_uses_the_available_cpus_unless_omp_num_threads_is_set(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(providers, "available_cpus", lambda: before + 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with cpu_threads("cpu"):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    with cpu_threads("cuda"):
        assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))
    with cpu_threads("cpu"):
        assert torch.get_num_threads() == before
    monkeypatch.undo()
    assert 1 <= providers.available_cpus() <= (os.cpu_count() or 1)


def test_hf_other_poolings(minilm_vectors):
    provider, mean_vecs = minilm_vectors
    for pooling in ("cls", "last"):
        other = HFProvider(pooling=pooling)
        other._tokenizer, other._model = provider._tokenizer, provider._model
        vecs = other.embed(TEXTS[:2])
        assert vecs.shape == (2, 384)
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        assert not np.allclose(vecs, mean_vecs[:2], atol=1e-3)


def test_sentence_transformers_matches_hf_mean_pooling(minilm_vectors):
    _, hf_vecs = minilm_vectors
    st_vecs = SentenceTransformersProvider(batch_size=4).embed(TEXTS)
    np.testing.assert_allclose(st_vecs, hf_vecs, atol=1e-4)


def test_embedding_device_auto_follows_cuda_and_bad_choices_name_the_key(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("CPU") == "cpu"
    with pytest.raises(EmbeddingError, match=r"embedding_device: 'cuda' but no CUDA GPU.*fix: "):
        resolve_device("cuda")
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: False)
    with pytest.raises(EmbeddingError, match=r"embedding_half: True needs a CUDA device.*; fix: "):
        resolve_device("auto", half=True)
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: True)
    assert resolve_device("cpu", half=True) == "cpu"
    with pytest.raises(ValueError, match=r"embedding_device: 'tpu' is not a device; fix: "):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1", half=True) == "cuda:1"


def test_half_precision_vectors_are_cached_apart(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    full, half = HFProvider(device="cuda"), HFProvider(device="cuda", half=True)
    assert full.identity() == HFProvider(device="cpu").identity()
    assert half.identity() == {**full.identity(), "dtype": "float16"}


@pytest.mark.skipif(not precision.native_bfloat16("cpu"), reason="this CPU has no native bfloat16")
@pytest.mark.parametrize("kind", [HFProvider, SentenceTransformersProvider])
def test_half_precision_on_a_cpu_is_bfloat16_close_to_float32_and_cached_apart(kind):
    full, half = kind(device="cpu"), kind(device="cpu", half=True)
    assert half.identity() == {**full.identity(), "dtype": "bfloat16"}
    full_vectors, half_vectors = full.embed(TEXTS), half.embed(TEXTS)
    assert half_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(half_vectors, axis=1), 1.0, rtol=1e-5)
    cosines = (full_vectors * half_vectors).sum(axis=1)
    assert cosines.min() > 0.999 and not np.array_equal(full_vectors, half_vectors)


def test_an_explicit_cpu_device_gives_the_default_vectors(minilm_vectors):
    provider, vectors = minilm_vectors
    assert provider.device == "cpu"
    np.testing.assert_array_equal(HFProvider(batch_size=3, device="cpu").embed(TEXTS), vectors)


def test_missing_model_path_and_unknown_names(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model.*does not exist.*embedding_model"):
        HFProvider(str(missing))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_local_model("./relative/model")
    offline = HFProvider("faerec-test-org/not-a-real-model-xyz")
    with pytest.raises(EmbeddingError, match="not-a-real-model-xyz.*embedding_allow_download"):
        offline.embed(["a"])
    with pytest.raises(ValueError, match="embedding_pooling"):
        HFProvider(pooling="max")
    with pytest.raises(ValueError, match="embedding_provider"):
        make_provider(SimpleNamespace(provider="word2vec"))


def test_validate_vectors_rejects_bad_output():
    good = np.ones((2, 3))
    assert validate_vectors(good, 2, "src").dtype == np.float32
    cases = [
        (np.array([[1.0, math.nan, 0.0], [1.0, 1.0, 1.0]]), 2, None, "NaN or infinite"),
        (np.array([[1.0, math.inf, 0.0]]), 1, None, "NaN or infinite"),
        (good, 3, None, "2 vectors for 3 texts"),
        (good, 2, 4, "dimension 3, expected 4"),
        ([[1.0, 2.0], [1.0]], 2, None, "ragged"),
        (np.ones(3), 3, None, "shape"),
    ]
    for vectors, rows, dim, message in cases:
        with pytest.raises(EmbeddingError, match=message):
            validate_vectors(vectors, rows, "src", dim)


# ----- OpenAI-compatible client against a local fake server -----

KEY = "sk-test-secret-123"


class FakeServer:
    """Answers POST /v1/embeddings from a queue of scripted replies; records the requests."""

    def __init__(self):
        self.replies: list = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                reply = server.replies.pop(0) if server.replies else "ok"
                status, payload = reply(body) if callable(reply) else _scripted(reply, body)
                data = payload.encode() if isinstance(payload, str) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _vector(text, dim=4):
    return [float(len(text)), 1.0, float(text.count("a")) + 0.5, 2.0][:dim]


def _answer(body, dim=4, transform=None):
    data = [
        {"object": "embedding", "index": i, "embedding": _vector(t, dim)}
        for i, t in enumerate(body["input"])
    ]
    if transform:
        data = transform(data)
    return 200, json.dumps({"object": "list", "data": list(reversed(data))})


def _scripted(reply, body):
    if reply == "ok":
        return _answer(body)
    if isinstance(reply, int):
        return reply, json.dumps({"error": {"message": f"status {reply}"}})
    raise AssertionError(reply)


@pytest.fixture
def server():
    srv = FakeServer()
    yield srv
    srv.close()


@pytest.fixture
def client(server, monkeypatch):
    monkeypatch.setenv("FAEREC_TEST_KEY", KEY)
    return OpenAIProvider(
        "fake-embed",
        server.base,
        "FAEREC_TEST_KEY",
        batch_size=2,
        max_attempts=3,
        retry_delay=0.01,
        timeout=5,
    )


def test_openai_success_order_and_request(server, client):
    vecs = client.embed(["aaa", "b", "ca"])
    assert vecs.shape == (3, 4)
    expected = np.array([_vector("aaa"), _vector("b"), _vector("ca")], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vecs, expected, rtol=1e-6)
    request = server.requests[0]
    assert request["path"] == "/v1/embeddings"
    assert request["auth"] == f"Bearer {KEY}"
    assert request["body"] == {"model": "fake-embed", "input": ["aaa", "b", "ca"]}
    assert client.identity() == {
        "provider": "openai",
        "model": "fake-embed",
        "url": server.base + "/embeddings",
    }


def test_openai_retries_429_then_succeeds(server, client, caplog):
    server.replies = [429, 503, "ok"]
    vecs = client.embed(["x", "y"])
    assert vecs.shape == (2, 4) and len(server.requests) == 3
    assert KEY not in caplog.text


def test_openai_persistent_500_is_a_clear_error(server, client, caplog):
    server.replies = [500, 500, 500]
    with pytest.raises(EmbeddingError) as info:
        client.embed(["x"])
    message = str(info.value)
    assert "500" in message and server.base + "/embeddings" in message
    assert "3 attempts" in message and KEY not in message and KEY not in caplog.text
    assert len(server.requests) == 3


def test_openai_client_error_is_not_retried(server, client):
    server.replies = [401]
    with pytest.raises(EmbeddingError, match="HTTP 401"):
        client.embed(["x"])
    assert len(server.requests) == 1


def test_openai_connection_error_is_retried_then_reported(monkeypatch):
    monkeypatch.setenv("FAEREC_TEST_KEY", KEY)
    srv = FakeServer()
    base = srv.base
    srv.close()
    dead = OpenAIProvider("m", base, "FAEREC_TEST_KEY", max_attempts=2, retry_delay=0.01)
    with pytest.raises(EmbeddingError, match="after 2 attempts.*connection error"):
        dead.embed(["x"])


def test_openai_nan_wrong_dimension_and_count(server, client):
    server.replies = [lambda body: (200, '{"data": [{"index": 0, "embedding": [1.0, NaN]}]}')]
    with pytest.raises(EmbeddingError, match="NaN"):
        client.embed(["x"])

    server.replies = [lambda body: _answer(body, transform=lambda d: d[:1])]
    with pytest.raises(EmbeddingError, match="1 vectors for 2 texts"):
        client.embed(["x", "y"])

    def ragged(data):
        data[1]["embedding"] = data[1]["embedding"][:3]
        return data

    server.replies = [lambda body: _answer(body, transform=ragged)]
    with pytest.raises(EmbeddingError, match="ragged"):
        client.embed(["x", "y"])

    server.replies = ["ok", lambda body: _answer(body, dim=3)]
    client.embed(["x", "y"])
    with pytest.raises(EmbeddingError, match="dimension 3, expected 4"):
        client.embed(["z"])

    server.replies = [lambda body: (200, "<html>proxy error</html>")]
    with pytest.raises(EmbeddingError, match="not an OpenAI embeddings answer"):
        client.embed(["x"])


def test_openai_missing_key_names_the_variable(server, monkeypatch):
    monkeypatch.delenv("FAEREC_MISSING_KEY", raising=False)
    provider = OpenAIProvider("m", server.base, "FAEREC_MISSING_KEY")
    with pytest.raises(EmbeddingError, match="FAEREC_MISSING_KEY is not set"):
        provider.embed(["x"])
    assert server.requests == []
