"""The local model with its matrix products in int8: built once from the pinned file, then cached.

The pinned file stores its weights as int8 but its graph casts each back to float32 before it is
used, so onnxruntime folds them into float32 constants and runs the whole model in float32.
Quantizing those `MatMul`s dynamically (int8 weights; each run quantizes its activations) embeds
a short query in 1.45 ms on one thread instead of 3.5 ms on two, for vectors at cosine ~0.97 to
the float32 ones (see the README's latency section).

The build takes about 2 s and gives the same bytes every time for one onnxruntime version, so it
is kept in the user cache under a name made of the source file's SHA-256 and that version; a new
onnxruntime builds its own and removes the old one. It is written to a temporary file and renamed
into place, so a crash or two processes building at once never leave a partial file behind, and
it is loaded only from a folder and a file no other user may change.
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

from mcp_server.errors import Misconfigured

logger = logging.getLogger(__name__)

CACHE_DIR = platformdirs.user_cache_path("bulkhead") / "models"


@contextmanager
def quantized_model(source: Path, source_sha256: str, *, cache_dir: Path = CACHE_DIR) -> Iterator[Path]:
    """The int8 build of the (already verified) model file `source`, built if need be, for the
    duration of the block (load it there).

    When `cache_dir` cannot be written (a read-only home, say), or another user could change it
    or the cached file, the build is made in a private temporary folder, removed after the block.
    """
    import onnxruntime

    name = f"{source.stem}-{source_sha256[:16]}-matmul-int8-ort{onnxruntime.__version__}.onnx"
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
        logger.info("building the int8 build of the local embedding model (once, about 2 s)")
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
    """Remove the builds of other model files or onnxruntime versions, so upgrades do not pile
    them up (a process that loaded one already holds what it read)."""
    for old in folder.glob(f"{stem}-*-matmul-int8-ort*.onnx"):
        if old != keep:
            with contextlib.suppress(OSError):
                old.unlink()


def _build(source: Path, folded: Path, target: Path) -> None:
    import onnxruntime

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise Misconfigured(
            "the int8 local embedding model needs the onnx package; reinstall bulkhead-memory."
        ) from None
    # Constant folding turns each int8 weight and its scale into one float32 initializer, which
    # the quantizer can then see (it leaves a MatMul whose weight is computed alone).
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    with _quiet_quantizer():
        quantize_dynamic(folded, target, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)


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
