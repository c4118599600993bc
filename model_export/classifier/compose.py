"""One ONNX graph: mirror, the frozen extractor, the embedding maths, then Gemm and Softmax.

The composed model takes the extractor's input unchanged (``input``: N x 3 x 224 x 224 float
RGB, ``(x - 128) * 0.0078125``, the centre crop described in the bundle manifest) and has two
outputs:

- ``probabilities`` (N, K): softmax over the K product classes;
- ``embedding`` (N, D): the unit embedding of ``embed.combine_views`` (``add-product`` uses it
  to learn a new class from photos with the model alone).

The graph mirrors each image itself (one extractor pass over a batch of 2N), so the caller's
preprocessing is a plain crop and resize. Only standard opset-11 operators are added, so
ONNX Runtime alone runs it. Building the graph needs the ``onnx`` package (export side only).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from model_export.classifier.embed import EPS, dynamic_batch, import_onnx
from model_export.classifier.errors import ClassifierError
from model_export.classifier.heads import LogisticHead

INPUT = "input"
PROBS = "probabilities"
EMBEDDING = "embedding"
WEIGHT = "head/weight"
BIAS = "head/bias"
_P = "head/"


def _normalise(helper: Any, x: str, out: str, tag: str) -> list[Any]:
    """Nodes dividing each row of 2-D ``x`` by its L2 norm (floored at EPS), as numpy does."""
    p = _P + tag
    return [
        helper.make_node("ReduceL2", [x], [p + "norm"], axes=[-1], keepdims=1, name=p + "Norm"),
        helper.make_node("Max", [p + "norm", _P + "eps"], [p + "safe"], name=p + "Floor"),
        helper.make_node("Div", [x, p + "safe"], [out], name=p + "Normalise"),
    ]


def compose(extractor: Any, head: LogisticHead) -> Any:
    """The extractor's graph with mirroring in front and the embedding + head behind it.

    Returns a checked ``onnx.ModelProto`` with a dynamic batch axis.
    """
    onnx = import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    model = dynamic_batch(extractor)
    graph = model.graph
    if len(graph.output) != 1 or len(graph.input) != 1:
        raise ClassifierError("the extractor must have exactly one input and one output")
    features, image = graph.output[0].name, graph.input[0].name
    if image != INPUT:
        raise ClassifierError(f"the extractor's input is {image!r}; expected {INPUT!r}")
    dim = int(head.weight.shape[1])
    both = _P + "with_mirror"
    for node in graph.node:  # the extractor now reads [images; mirrored images]
        for i, name in enumerate(node.input):
            if name == image:
                node.input[i] = both
    del graph.output[:]
    graph.initializer.extend(
        [
            numpy_helper.from_array(head.weight.astype(np.float32), WEIGHT),
            numpy_helper.from_array(head.bias.astype(np.float32), BIAS),
            numpy_helper.from_array(np.array(EPS, np.float32), _P + "eps"),
            numpy_helper.from_array(np.array([-1], np.int64), _P + "rev_start"),
            numpy_helper.from_array(np.array([np.iinfo(np.int64).min], np.int64), _P + "rev_end"),
            numpy_helper.from_array(np.array([3], np.int64), _P + "rev_axis"),
            numpy_helper.from_array(np.array([-1], np.int64), _P + "rev_step"),
            numpy_helper.from_array(np.array([2, -1, dim], np.int64), _P + "views"),
        ]
    )
    rev = [_P + s for s in ("rev_start", "rev_end", "rev_axis", "rev_step")]
    front = [
        helper.make_node("Slice", [image, *rev], [_P + "mirrored"], name=_P + "Mirror"),
        helper.make_node("Concat", [image, _P + "mirrored"], [both], axis=0, name=_P + "Views"),
    ]
    tail = [
        helper.make_node("Flatten", [features], [_P + "flat"], axis=1, name=_P + "Flatten"),
        helper.make_node("Relu", [_P + "flat"], [_P + "pos"], name=_P + "Relu"),
        helper.make_node("Sqrt", [_P + "pos"], [_P + "sqrt"], name=_P + "Sqrt"),
        *_normalise(helper, _P + "sqrt", _P + "unit", "view_"),
        helper.make_node("Reshape", [_P + "unit", _P + "views"], [_P + "paired"], name=_P + "Pair"),
        helper.make_node(
            "ReduceSum", [_P + "paired"], [_P + "sum"], axes=[0], keepdims=0, name=_P + "Sum"
        ),
        *_normalise(helper, _P + "sum", EMBEDDING, "emb_"),
        helper.make_node(
            "Gemm", [EMBEDDING, WEIGHT, BIAS], [_P + "logits"], transB=1, name=_P + "Gemm"
        ),
        helper.make_node("Softmax", [_P + "logits"], [PROBS], axis=1, name=_P + "Softmax"),
    ]
    nodes = [*front, *graph.node, *tail]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.output.extend(
        [
            helper.make_tensor_value_info(PROBS, TensorProto.FLOAT, ["N", len(head.classes)]),
            helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["N", dim]),
        ]
    )
    graph.name = "product_classifier"
    _set_metadata(model, head)
    onnx.checker.check_model(model)
    return model


def _set_metadata(model: Any, head: LogisticHead) -> None:
    del model.metadata_props[:]
    for key, value in {
        "task": "classify",
        "classes": json.dumps(list(head.classes)),
        "outputs": json.dumps([PROBS, EMBEDDING]),
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def replace_head(model: Any, head: LogisticHead) -> Any:
    """A copy of a composed model with another head (e.g. one more class)."""
    onnx = import_onnx()
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = {init.name for init in out.graph.initializer}
    if WEIGHT not in names or BIAS not in names:
        raise ClassifierError("not a composed product classifier: no head/weight, head/bias")
    for init in out.graph.initializer:
        if init.name == WEIGHT:
            init.CopyFrom(numpy_helper.from_array(head.weight.astype(np.float32), WEIGHT))
        elif init.name == BIAS:
            init.CopyFrom(numpy_helper.from_array(head.bias.astype(np.float32), BIAS))
    for value in out.graph.output:
        if value.name == PROBS:
            value.type.tensor_type.shape.dim[1].dim_value = len(head.classes)
    _set_metadata(out, head)
    onnx.checker.check_model(out)
    return out
