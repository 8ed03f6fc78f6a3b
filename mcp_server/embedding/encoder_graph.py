"""all-MiniLM-L6-v2's encoder as a compact ONNX graph, made from the pinned file's own weights.

The pinned export spells each layer's attention out in some thirty small nodes (reshapes,
transposes, slices, masks) that onnxruntime cannot fuse; for a sentence of 20 word pieces they
took about 1.2 of its 3.8 ms under onnxruntime's profiler, the matrix products 1.8. This graph
computes the same function with onnxruntime's fused operators, 68 nodes in all once quantized
instead of 261:

- `EmbedLayerNormalization`: word and position embeddings (the token type is always 0, so its
  row is added to every position's), summed and normalised;
- per layer, the query, key and value products, `MultiHeadAttention`, the output product, the
  residual and its `LayerNormalization`, the feed-forward products around `BiasGelu`, and the
  second residual and normalisation;
- `ReduceMean` over the word pieces: the sentence vector, before it is made unit length.

It embeds one text per run (no padding, hence no attention mask): the input is `input_ids`
(int32, shape [1, pieces]), the output `pooled` (float32, [1, 384]). Before quantization it
agrees with the pinned file to float precision (tests/memory/test_embedders.py checks it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mcp_server.errors import Misconfigured

HIDDEN = 384
HEADS = 12
LAYERS = 6
INPUT = "input_ids"
OUTPUT = "pooled"
# Where the export keeps each weight: the bias of the same product names it (`<prefix>.bias`).
EMBEDDINGS = "inner.embeddings."
LAYER = "inner.encoder.layer.{}."
NOT_THE_EXPORT = "the local embedding model file is not the expected export; reinstall bulkhead-memory."
PRODUCTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def encoder_graph(folded: Any) -> Any:
    """The compact float32 graph (an `onnx.ModelProto`) of the pinned model, given that model
    with its constants folded (each int8 weight and its scale one float32 initializer)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = {t.name: numpy_helper.to_array(t) for t in folded.graph.initializer}
    products = _product_weights(folded, weights)
    epsilon = _layer_norm_epsilon(folded)
    initializers: list[Any] = []
    nodes: list[Any] = []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, *, ms: bool = False, **attributes: Any) -> str:
        domain = "com.microsoft" if ms else ""
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attributes))
        return output

    def product(x: str, prefix: str, out: str) -> str:
        """x @ W + b for the product named `prefix` (the quantizer turns the MatMul into int8)."""
        multiplied = node("MatMul", [x, constant(f"{prefix}.weight", products[prefix])], f"{out}.product")
        return node("Add", [multiplied, constant(f"{prefix}.bias", weights[f"{prefix}.bias"])], out)

    def residual_norm(x: str, skip: str, prefix: str, out: str) -> str:
        # Add and LayerNormalization, not onnxruntime's fused SkipLayerNormalization: on a
        # short text that kernel took three times as long (see `_Model` in local.py).
        summed = node("Add", [x, skip], f"{out}.residual")
        gamma = constant(f"{prefix}.weight", weights[f"{prefix}.weight"])
        beta = constant(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return node("LayerNormalization", [summed, gamma, beta], out, axis=-1, epsilon=epsilon)

    e = EMBEDDINGS
    positions = weights[e + "position_embeddings.weight"] + weights[e + "token_type_embeddings.weight"][0]
    nodes.append(
        helper.make_node(
            "EmbedLayerNormalization",
            [
                INPUT,
                "",
                constant("word_embeddings", weights[e + "word_embeddings.weight"]),
                constant("position_embeddings", positions),
                "",
                constant("embeddings.gamma", weights[e + "LayerNorm.weight"]),
                constant("embeddings.beta", weights[e + "LayerNorm.bias"]),
            ],
            ["layer0.input", "mask_index"],
            name="embeddings",
            domain="com.microsoft",
            epsilon=epsilon,
        )
    )
    x = "layer0.input"
    for index in range(LAYERS):
        p, out = LAYER.format(index), f"layer{index}."
        q, k, v = (product(x, p + f"attention.self.{part}", out + part) for part in ("query", "key", "value"))
        attended = node("MultiHeadAttention", [q, k, v], out + "attention", ms=True, num_heads=HEADS)
        projected = product(attended, p + "attention.output.dense", out + "attention.output")
        middle = residual_norm(projected, x, p + "attention.output.LayerNorm", out + "middle")
        widened = node(
            "MatMul",
            [middle, constant(p + "intermediate.dense.weight", products[p + "intermediate.dense"])],
            out + "intermediate.product",
        )
        gelu = node(
            "BiasGelu",
            [widened, constant(p + "intermediate.dense.bias", weights[p + "intermediate.dense.bias"])],
            out + "intermediate",
            ms=True,
        )
        narrowed = product(gelu, p + "output.dense", out + "output")
        x = residual_norm(narrowed, middle, p + "output.LayerNorm", f"layer{index + 1}.input")
    node("ReduceMean", [x], OUTPUT, axes=[1], keepdims=0)
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2 encoder",
        [helper.make_tensor_value_info(INPUT, TensorProto.INT32, [1, "pieces"])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, HIDDEN])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    return model


def _product_weights(folded: Any, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each product's weight matrix by its name: the MatMul whose output the product's bias is added to."""
    made_by = {output: n for n in folded.graph.node for output in n.output}
    found: dict[str, np.ndarray] = {}
    for n in folded.graph.node:
        if n.op_type == "Add" and len(n.input) == 2 and n.input[1].endswith(".bias"):
            source = made_by.get(n.input[0])
            if source is not None and source.op_type == "MatMul" and source.input[1] in weights:
                found[n.input[1].removesuffix(".bias")] = weights[source.input[1]]
    wanted = {LAYER.format(i) + name for i in range(LAYERS) for name in PRODUCTS}
    if not wanted <= found.keys() or any(found[name].ndim != 2 or HIDDEN not in found[name].shape for name in wanted):
        raise Misconfigured(NOT_THE_EXPORT)
    return found


def _layer_norm_epsilon(folded: Any) -> float:
    for n in folded.graph.node:
        if n.op_type == "LayerNormalization":
            for attribute in n.attribute:
                if attribute.name == "epsilon":
                    return float(attribute.f)
    raise Misconfigured(NOT_THE_EXPORT)
