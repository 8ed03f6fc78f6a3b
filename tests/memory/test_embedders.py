"""The embedders themselves: the local model, and the OpenAI-compatible client against a stub."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import numpy as np
import pytest
from helpers.embedding_stub import KEY, StubEmbeddings, embeddings_stub, stub_vector

from mcp_server.config import load_settings
from mcp_server.embedding import build_embedder
from mcp_server.embedding.encoder_graph import INPUT, OUTPUT, encoder_graph
from mcp_server.embedding.local import MODEL_SHA256, TOKENIZER_PATH, LocalEmbedder, model_path
from mcp_server.embedding.openai_compatible import OpenAICompatibleEmbedder, endpoint
from mcp_server.embedding.quantized import fold, quantized_model
from mcp_server.errors import BulkheadError, Misconfigured

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    """One local model for the module: it loads once per process."""
    return LocalEmbedder()


@pytest.fixture(scope="module")
def stub() -> Iterator[StubEmbeddings]:
    with embeddings_stub() as running:
        yield running


async def test_local_vectors_are_unit_length_and_batch_independent(local: LocalEmbedder) -> None:
    texts = ["My sister adopted a kitten last spring.", "The quarterly report is due on Friday.", "ok"]
    batch = await local.embed_documents(texts)
    assert [v.shape for v in batch] == [(384,)] * 3
    assert np.allclose([np.linalg.norm(v) for v in batch], 1.0, atol=1e-5)
    alone = await local.embed_documents([texts[0]])
    # The same bits alone as beside others: a vector never depends on what else was embedded.
    assert np.array_equal(alone[0], batch[0])
    query = await local.embed_query("Which family member got a new cat?")
    assert float(query @ batch[0]) > 0.4 > float(query @ batch[1])


async def test_local_concurrent_calls_each_get_their_own_vectors(local: LocalEmbedder) -> None:
    texts = [f"note number {i} about gardening" for i in range(12)]
    results: dict[int, np.ndarray] = {}

    async def one(i: int) -> None:
        results[i] = (await local.embed_documents([texts[i]]))[0]

    async with anyio.create_task_group() as group:
        for i in range(12):
            group.start_soon(one, i)
    expected = await local.embed_documents(texts)
    for i in range(12):
        assert np.array_equal(results[i], expected[i])


def test_the_int8_model_is_built_once_and_cached(tmp_path: Path) -> None:
    source, cache = model_path(), tmp_path / "models"

    def build(folder: Path = cache) -> tuple[Path, bytes]:
        with quantized_model(source, MODEL_SHA256, cache_dir=folder) as built:
            return built, built.read_bytes()

    built, content = build()
    assert built.parent == cache and MODEL_SHA256[:16] in built.name
    made = built.stat().st_mtime_ns
    assert build() == (built, content) and built.stat().st_mtime_ns == made
    assert [p.name for p in cache.iterdir()] == [built.name]  # no build folder left behind
    # The build of an older onnxruntime goes when a new one is made; other files stay.
    older = cache / built.name.replace("-ort", "-ort0.")
    older.write_bytes(b"old")
    (cache / "notes.txt").write_text("kept")
    built.unlink()
    assert build() == (built, content)
    assert sorted(p.name for p in cache.iterdir()) == sorted([built.name, "notes.txt"])
    # A cached build other users could have replaced is not loaded but built afresh in its place.
    built.chmod(0o666)
    assert build() == (built, content) and not built.stat().st_mode & 0o022
    # A cache folder other users may write to is not used at all, nor one that cannot be made
    # (a file stands where it would be): the build is made elsewhere and removed after loading.
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o777)
    (tmp_path / "blocked").write_text("")
    for unusable in (tmp_path / "shared", tmp_path / "blocked" / "models"):
        elsewhere, same = build(unusable)
        assert same == content and elsewhere.parent != unusable and not elsewhere.exists()
    assert not list((tmp_path / "shared").iterdir())


def test_the_compact_graph_computes_what_the_pinned_file_does(tmp_path: Path, local: LocalEmbedder) -> None:
    import onnx
    import onnxruntime
    from tokenizers import Tokenizer

    fold(model_path(), tmp_path / "folded.onnx")
    compact = encoder_graph(onnx.load(str(tmp_path / "folded.onnx")))
    onnx.checker.check_model(compact)
    assert len(compact.graph.node) < len(onnx.load(str(model_path())).graph.node) / 3
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    ours = onnxruntime.InferenceSession(compact.SerializeToString(), options, providers=["CPUExecutionProvider"])
    pinned = onnxruntime.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.no_padding()
    texts = ["ok", "My sister adopted a kitten last spring.", "Caroline: the support group " * 20]
    int8 = local.encode_now(texts)
    for text, quantized in zip(texts, int8, strict=True):
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        hidden = pinned.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids})[0]
        expected = hidden.mean(axis=1)[0]
        got = ours.run([OUTPUT], {INPUT: ids.astype(np.int32)})[0][0]
        # The same function to float precision: the rewrite changes how, not what, it computes.
        assert np.allclose(got, expected, atol=1e-4)
        # Its int8 build, which the embedder runs, stays close to it on a sentence (about 0.95;
        # a text of one word piece moves further, 0.87 for "ok").
        if len(text) > 2:
            assert float(quantized @ (expected / np.linalg.norm(expected))) > 0.93


async def test_local_query_cache_is_per_namespace_and_read_only(local: LocalEmbedder) -> None:
    first = await local.embed_query("where are my keys", namespace="tenant_a")
    assert await local.embed_query("where are my keys", namespace="tenant_a") is first
    other = await local.embed_query("where are my keys", namespace="tenant_b")
    assert other is not first and float(other @ first) > 0.999
    assert not first.flags.writeable


async def test_openai_compatible_round_trip(stub: StubEmbeddings) -> None:
    embedder = OpenAICompatibleEmbedder(url=stub.url, model="stub", dimensions=16, api_key=KEY)
    try:
        texts = [f"text {i} of many" for i in range(300)]
        before = len(stub.requests)
        vectors = await embedder.embed_documents(texts)
        assert len(stub.requests) - before == 3  # batched, 128 inputs per request
        assert stub.requests[-1] == {
            "model": "stub",
            "input": texts[256:],
            "dimensions": 16,
            "encoding_format": "float",
        }
        expected = np.array(stub_vector(texts[7], 16), dtype=np.float32)
        assert np.allclose(vectors[7], expected / np.linalg.norm(expected), atol=1e-6)  # in order, normalised
        query = await embedder.embed_query("text 7 of many")
        assert np.allclose(query, vectors[7])
        assert embedder.dimension == 16 and "stub" in embedder.name
    finally:
        await embedder.aclose()


@pytest.mark.parametrize(
    ("model", "key", "timeout", "message"),
    [
        ("stub", "wrong-key", 5.0, "refused the configured credentials (HTTP 401)"),
        ("stub-broken", KEY, 5.0, "busy or failing (HTTP 500)"),
        ("stub-slow", KEY, 0.3, "did not answer within 0.3 s"),
        ("stub-wrong-size", KEY, 5.0, "returned 17-dimension vectors but the server is configured for 16"),
    ],
)
async def test_openai_compatible_errors_are_one_clear_sentence(
    stub: StubEmbeddings, model: str, key: str, timeout: float, message: str
) -> None:
    embedder = OpenAICompatibleEmbedder(url=stub.url, model=model, dimensions=16, api_key=key, timeout=timeout)
    try:
        with pytest.raises(BulkheadError) as caught:
            await embedder.embed_documents(["hello"])
    finally:
        await embedder.aclose()
    text = str(caught.value)
    assert message in text and key not in text and stub.url not in text


async def test_openai_compatible_unreachable() -> None:
    embedder = OpenAICompatibleEmbedder(url="http://127.0.0.1:9/v1", model="m", dimensions=4)
    try:
        with pytest.raises(BulkheadError, match="cannot be reached"):
            await embedder.embed_query("hello")
    finally:
        await embedder.aclose()


def test_endpoint_and_settings() -> None:
    assert endpoint("http://h/v1/") == "http://h/v1/embeddings"
    assert endpoint("http://h/v1/embeddings") == "http://h/v1/embeddings"
    assert build_embedder(load_settings(embedder="none")) is None
    assert isinstance(build_embedder(load_settings(embedder="local")), LocalEmbedder)
    with pytest.raises(Misconfigured, match="BULKHEAD_EMBEDDING_URL: required"):
        load_settings(embedder="openai", embedding_model="m", embedding_dimensions=8)
    with pytest.raises(Misconfigured, match="BULKHEAD_EMBEDDING_DIMENSIONS"):
        load_settings(embedder="local", embedding_dimensions=512)
    with pytest.raises(Misconfigured, match="BULKHEAD_EMBEDDER"):
        load_settings(embedder="word2vec")


async def test_local_many_texts_are_spread_over_the_run_slots_in_order(local: LocalEmbedder) -> None:
    texts = [f"line {i} of a long document about tides" for i in range(40)]
    sizes: list[int] = []
    local.on_batch = sizes.append
    try:
        spread = await local.embed_documents(texts)
    finally:
        local.on_batch = None
    one_by_one = [(await local.embed_documents([text]))[0] for text in texts[:3]]
    assert len(spread) == 40 and all(np.array_equal(a, b) for a, b in zip(spread, one_by_one, strict=False))
    assert sum(sizes) == 40 and (len(sizes) > 1 or local._runs.total_tokens == 1)


async def test_a_failing_slice_of_many_texts_fails_the_call_with_one_clear_error(
    local: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = local.encode_now

    def failing(texts: list[str]) -> list[np.ndarray]:
        if "boom" in texts:
            raise RuntimeError("the model broke")
        return real(texts)

    monkeypatch.setattr(local, "encode_now", failing)
    with pytest.raises(BulkheadError) as raised:
        await local.embed_documents([f"text {i}" for i in range(39)] + ["boom"])
    assert raised.value.message == "the local embedding model failed on this text; nothing was changed."


async def test_a_lone_short_query_runs_on_the_event_loop_with_the_same_vector(
    local: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "When did my sister adopt the kitten?"
    threaded = (await local.embed_documents([question]))[0]  # also loads the model
    ran_in: list[str] = []
    real = local.encode_now

    def noting_thread(texts: list[str]) -> list[np.ndarray]:
        ran_in.append(threading.current_thread().name)
        return real(texts)

    monkeypatch.setattr(local, "encode_now", noting_thread)
    inline = await local.embed_query(question, namespace=unique_namespace())
    assert ran_in == [threading.main_thread().name] and np.array_equal(inline, threaded)
    # A long query, or one asked while another run is in flight, goes to a worker thread.
    ran_in.clear()
    long_question = "what did we decide " * 20
    await local.embed_query(long_question, namespace=unique_namespace())
    async with anyio.create_task_group() as group:
        group.start_soon(local.embed_documents, [f"memory {i} about tides" for i in range(8)])
        while local._runs.borrowed_tokens == 0:
            await anyio.sleep(0)
        busy = await local.embed_query(question, namespace=unique_namespace())
    assert threading.main_thread().name not in ran_in and np.array_equal(busy, threaded)


def unique_namespace() -> str:
    """A query cache namespace no other call used, so that the query is embedded again."""
    return f"test-{uuid.uuid4().hex}"
