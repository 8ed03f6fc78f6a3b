"""The local model's two int8 builds side by side: the pinned graph, and the compact one Bulkhead runs.

Both come from the same pinned file with the same quantization (`quantize_dynamic` on every
`MatMul`, int8 weights, activations per run): the baseline quantizes the file's own graph after
folding its constants, as Bulkhead did before; the other is `mcp_server.embedding.quantized`'s
build (`encoder_graph`, 68 nodes instead of 261). Each embeds the same texts one at a time on one
thread, the two taking turns every 25 texts, so a change in the machine's speed shows in both alike.
It prints the median time per text for memories (bench/sentences.py) and for questions, their
ratio, and how far the builds' vectors are from each other and from the float32 model.

    python bench/model_graphs.py [--texts 300]

Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentences import memories

from mcp_server.embedding.local import MODEL_SHA256, LocalEmbedder, model_path
from mcp_server.embedding.quantized import fold

Embed = Callable[[list[int]], np.ndarray]
# Texts run on one build before the other takes its turn: a model run right after the other one
# finds its weights out of the CPU caches, which a server running one model never does.
BLOCK = 25


def pinned_graph(path: Path) -> Embed:
    """The pinned file's graph (mask and token types as inputs), mean-pooled, run as Bulkhead
    runs its own build: one thread that sleeps when idle."""
    settings = onnxruntime.SessionOptions()
    settings.intra_op_num_threads = 1
    settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    settings.log_severity_level = 3
    model = onnxruntime.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])

    def embed(ids: list[int]) -> np.ndarray:
        tokens = np.array([ids], dtype=np.int64)
        feeds = {"input_ids": tokens, "attention_mask": np.ones_like(tokens), "token_type_ids": np.zeros_like(tokens)}
        return np.asarray(model.run(None, feeds)[0].mean(axis=1)[0])

    return embed


def unit(vectors: list[np.ndarray]) -> np.ndarray:
    rows = np.stack(vectors)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=300, help="memories and questions each (default 300)")
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    generated = list(memories(args.texts, seed=11))
    kinds = {"memories": [m.text for m in generated], "questions": [m.question for m in generated]}
    compact = LocalEmbedder()._loaded()  # the build Bulkhead runs, from its cache, and its tokenizer
    with tempfile.TemporaryDirectory(prefix="bulkhead-bench-") as work:
        folded, baseline_file = Path(work) / "folded.onnx", Path(work) / "pinned-int8.onnx"
        fold(model_path(), folded)
        quantize_dynamic(folded, baseline_file, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
        baseline = pinned_graph(baseline_file)
        float32 = pinned_graph(model_path())
        load_before = os.getloadavg()
        print(
            f"local model ({MODEL_SHA256[:12]}), one text per run, one thread, the builds taking turns every {BLOCK} texts"
        )
        for kind, texts in kinds.items():
            ids = [e.ids for e in compact.tokenizer.encode_batch(texts)]
            times: dict[str, list[float]] = {"pinned graph, int8 (before)": [], "compact graph, int8 (now)": []}
            ours, theirs = [], []
            for _ in range(3):
                for first in range(0, len(ids), BLOCK):
                    block = ids[first : first + BLOCK]
                    for pieces in block:
                        started = time.perf_counter()
                        theirs.append(baseline(pieces))
                        times["pinned graph, int8 (before)"].append((time.perf_counter() - started) * 1000)
                    for pieces in block:
                        started = time.perf_counter()
                        ours.append(compact._run(pieces))
                        times["compact graph, int8 (now)"].append((time.perf_counter() - started) * 1000)
            medians = {name: statistics.median(values) for name, values in times.items()}
            pieces_p50 = statistics.median(len(p) for p in ids)
            print(f"{kind} ({len(texts)}, median {pieces_p50:.0f} word pieces):")
            for name, value in medians.items():
                print(f"  {name:30s} p50 {value:6.3f} ms per text")
            before, now = medians.values()
            print(f"  now / before: {now / before:.2f}x")
            a, b = unit(theirs[: len(ids)]), unit(ours[: len(ids)])
            reference = unit([float32(p) for p in ids])
            agree = (a * b).sum(axis=1)
            print(
                f"  cosine between the builds: mean {agree.mean():.5f}, min {agree.min():.5f}; "
                f"to float32: before {(a * reference).sum(axis=1).mean():.4f}, now {(b * reference).sum(axis=1).mean():.4f}"
            )
        load_after = os.getloadavg()
    print(f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after")
    print("command: python " + shlex.join(["bench/model_graphs.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
