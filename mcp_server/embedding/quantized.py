"""The local model as a compact graph with its matrix products in int8: built once from the
pinned file, then cached.

The pinned file stores its weights as int8 but its graph casts each back to float32 before it is
used, so onnxruntime folds them into float32 constants and runs the whole model in float32. The
build folds those constants, rewrites the encoder with onnxruntime's fused operators
(`encoder_graph`), and quantizes its `MatMul`s dynamically (int8 weights; each run quantizes its
activations). A 20-piece sentence then embeds in about 1.1 ms on one thread, against 1.9 ms for
the pinned graph quantized alike and 3.5 ms in float32 on two (see the README's latency section).

The build takes a few seconds and gives the same bytes every time for one onnxruntime version,
so it is kept in the user cache under a name made of the source file's SHA-256 and that version;
a new onnxruntime builds its own and removes the old one. It is written to a temporary file and
renamed into place, so a crash or two processes building at once never leave a partial file
behind, and it is loaded only from a folder and a file no other user may change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from mcp_server.embedding.encoder_graph import encoder_graph
from mcp_server.errors import Misconfigured

logger = logging.getLogger(__name__)

CACHE_DIR = platformdirs.user_cache_path("bulkhead") / "models"
# What the cached file is, in its name: a build made another way is another file.
BUILD = "encoder-int8"


@contextmanager
def quantized_model(source: Path, source_sha256: str, *, cache_dir: Path = CACHE_DIR) -> Iterator[Path]:
    """The int8 build of the (already verified) model file `source`, built if need be, for the
    duration of the block (load it there).

    When `cache_dir` cannot be written (a read-only home, say), or another user could change it
    or the cached file, the build is made in a private temporary folder, removed after the block.
    """
    import onnxruntime

    name = f"{source.stem}-{source_sha256[:16]}-{BUILD}-ort{onnxruntime.__version__}.onnx"
    cached = cache_dir / name
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(cache_dir):
            raise PermissionError(f"{cache_dir} may be written by other users")
    except OSError as exc:
        logger.warning("cannot use the model cache (%s); building the int8 model in a temporary folder", exc)
        with tempfile.TemporaryDirectory(prefix="bulkhead-model-") as work:
            built = Path(work) / name
            _build(source, Path(work) / "folded.onnx", built)
            yield built
        return
    if not (cached.is_file() and _private(cached)):
        logger.info("building the int8 build of the local embedding model (once, a few seconds)")
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as work:
            built = Path(work) / name
            _build(source, Path(work) / "folded.onnx", built)
            os.replace(built, cached)
        _prune(cache_dir, source.stem, keep=cached)
    yield cached


def _private(path: Path) -> bool:
    """Whether only this user can change `path`: a model another user could replace would run
    whatever graph they wrote in this process."""
    if not hasattr(os, "geteuid"):
        return True
    status = path.stat()
    return status.st_uid == os.geteuid() and not status.st_mode & 0o022


def _prune(folder: Path, stem: str, keep: Path) -> None:
    """Remove the builds of other model files, onnxruntime versions or ways of building, so
    upgrades do not pile them up (a process that loaded one already holds what it read)."""
    for old in folder.glob(f"{stem}-*-ort*.onnx"):
        if old != keep:
            with contextlib.suppress(OSError):
                old.unlink()


def fold(source: Path, folded: Path) -> None:
    """Write `source` with its constants folded: each int8 weight and its scale become one
    float32 initializer, which the compact graph is built from."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def _build(source: Path, folded: Path, target: Path) -> None:
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise Misconfigured(
            "the int8 local embedding model needs the onnx package; reinstall bulkhead-memory."
        ) from None
    fold(source, folded)
    compact = folded.with_name("encoder.onnx")
    onnx.save(encoder_graph(onnx.load(str(folded))), str(compact))
    with _quiet_quantizer():
        quantize_dynamic(
            compact,
            target,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
            # Shape inference cannot see through onnxruntime's own operators; every tensor here is float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Drop the quantizer's advice to preprocess (it logs through the root logger, on stderr)."""

    def outside_quantizer(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    root.addFilter(outside_quantizer)
    try:
        yield
    finally:
        root.removeFilter(outside_quantizer)
