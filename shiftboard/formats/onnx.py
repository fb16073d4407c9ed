"""ONNX models (``torch.onnx.export``): checked without running anything, run with onnxruntime.

:func:`check` is the gateway's static check, before the sandboxed probe:

* the file parses as a ``ModelProto`` (``onnx.load`` with ``load_external_data=False``) and is below
  protobuf's 2 GiB limit;
* no tensor anywhere (initializers, sparse initializers, attributes, subgraphs, functions) keeps its data
  in an external file (``data_location: EXTERNAL`` or ``external_data`` entries): the model is one
  self-contained file, and nothing it names is ever opened;
* ``onnx.checker.check_model(full_check=True)`` (the graph, its types and shapes);
* operator sets: the default domain (``""`` / ``ai.onnx``) at opset 7 to :data:`MAX_OPSET` (the
  newest onnxruntime |version| runs, 26 for 1.31, and no newer than the installed onnx knows), and
  ``ai.onnx.ml`` up to :data:`MAX_ML_OPSET`; any other domain (custom operators, ``com.microsoft``
  contrib operators, model-local functions) is refused, in imports, nodes and functions;
* one float32 input of rank 4 whose batch dimension is dynamic (a static batch is refused, naming the
  export option that fixes it).

:func:`load` runs the model with onnxruntime on the CPU execution provider, ``intra_op_num_threads``
threads and one inter-op thread, sequential execution: the probe child (inside the sandbox, one
thread) and the Triton Python-backend model use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shiftboard.domain.errors import InvalidArgument
from shiftboard.formats import Runner

#: The newest default-domain opset onnxruntime 1.31 runs (it refuses 27 and 28, which onnx 1.23 knows:
#: tests/test_onnx_format.py checks both sides against the installed onnxruntime).
MAX_OPSET = 26
MIN_OPSET = 7
#: The newest ``ai.onnx.ml`` opset onnxruntime 1.31 runs.
MAX_ML_OPSET = 5
DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})
ML_DOMAIN = "ai.onnx.ml"
#: protobuf refuses to parse a message of 2 GiB or more; larger ONNX models need external data.
MAX_BYTES = 2 ** 31 - 1
_BATCH_FIX = ("export the batch dimension as dynamic: torch.onnx.export(model, (example,), PATH, "
              "dynamic_shapes=({0: torch.export.Dim('batch')},)), or dynamic_axes={'input': {0: 'batch'}} "
              "with dynamo=False")


def max_opset() -> int:
    """The newest default-domain opset accepted: onnxruntime's bound, or the installed onnx's if lower."""
    import onnx.defs

    return min(MAX_OPSET, int(onnx.defs.onnx_opset_version()))


def check(path: Path) -> None:
    """Raise :class:`InvalidArgument` unless ``path`` is a self-contained ONNX classifier shiftboard can run."""
    import onnx

    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise InvalidArgument(f"the ONNX model is {size:,} bytes, over protobuf's 2 GiB limit for one file: "
                              "shrink it (shiftboard does not accept external-data ONNX models)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the submitter's to fix
        raise InvalidArgument(f"the model file is not a readable ONNX model ({_line(exc)}): export it with "
                              "torch.onnx.export") from None
    _check_self_contained(model)
    _check_domains(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError, shape-inference errors
        raise InvalidArgument(f"the ONNX model does not pass onnx.checker: {_line(exc)}") from None
    _check_input(model)


def _line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def _graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every subgraph of its nodes' attributes (If, Loop, Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def _nodes(model: Any) -> Iterator[Any]:
    for graph in _graphs(model.graph):
        yield from graph.node
    for function in model.functions:
        yield from function.node


def _tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of the model: initializers (sparse ones too) and attribute tensors."""
    for graph in _graphs(model.graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
    for node in _nodes(model):
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices


def _check_self_contained(model: Any) -> None:
    import onnx

    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            where = next((e.value for e in tensor.external_data if e.key == "location"), "")
            raise InvalidArgument(
                f"the ONNX model keeps tensor {tensor.name!r} in an external file{f' ({where!r})' if where else ''}: "
                "shiftboard accepts self-contained ONNX files only; export without external data "
                "(torch.onnx.export(..., external_data=False), or onnx.save_model(model, PATH, "
                "save_as_external_data=False))")


def _check_domains(model: Any) -> None:
    newest = max_opset()
    for opset in model.opset_import:
        if opset.domain in DEFAULT_DOMAINS:
            if not MIN_OPSET <= opset.version <= newest:
                raise InvalidArgument(
                    f"the ONNX model uses opset {opset.version} of the default domain; this gateway's "
                    f"onnxruntime runs opsets {MIN_OPSET} to {newest}: export with torch.onnx.export(..., "
                    f"opset_version={min(max(opset.version, MIN_OPSET), newest)})")
        elif opset.domain == ML_DOMAIN:
            if not 1 <= opset.version <= MAX_ML_OPSET:
                raise InvalidArgument(f"the ONNX model uses opset {opset.version} of {ML_DOMAIN}; onnxruntime "
                                      f"runs 1 to {MAX_ML_OPSET}: convert it to an older opset")
        else:
            raise InvalidArgument(_domain_refusal(opset.domain, "imports the operator set"))
    for function in model.functions:
        raise InvalidArgument(_domain_refusal(function.domain, f"defines function {function.name!r} in"))
    for node in _nodes(model):
        if node.domain not in DEFAULT_DOMAINS and node.domain != ML_DOMAIN:
            raise InvalidArgument(_domain_refusal(node.domain, f"uses operator {node.op_type!r} of"))


def _domain_refusal(domain: str, what: str) -> str:
    return (f"the ONNX model {what} domain {domain!r}: shiftboard accepts the standard ONNX operators only "
            f"(domains '' / ai.onnx and {ML_DOMAIN}), no custom operators or model-local functions; export "
            "without custom ops (torch.onnx.export inlines its functions by default)")


def _check_input(model: Any) -> None:
    import onnx

    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InvalidArgument(f"the ONNX model has {len(inputs)} inputs: a classifier takes one batch of "
                              "images [N, C, H, W]")
    if not model.graph.output:
        raise InvalidArgument("the ONNX model has no output: return logits [N, num_classes]")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        name = onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else "not a tensor"
        raise InvalidArgument(f"the ONNX model's input {inputs[0].name!r} is {name}: shiftboard sends float32 "
                              "images [N, C, H, W]")
    dims = tensor.shape.dim if tensor.HasField("shape") else []
    if dims and len(dims) != 4:
        raise InvalidArgument(f"the ONNX model's input has rank {len(dims)}: shiftboard sends images "
                              "[N, C, H, W] (rank 4)")
    if dims and dims[0].HasField("dim_value"):
        raise InvalidArgument(f"the ONNX model's input has a fixed batch size of {dims[0].dim_value}: "
                              f"{_BATCH_FIX}")


def load(path: str, *, threads: int = 1, inspect: bool = False) -> Runner:
    """An onnxruntime session on ``path`` (CPU execution provider) as a :data:`Runner`.

    ``inspect`` adds nothing: what a model may use was checked statically (:func:`check`)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(batch: Any) -> Any:
        x = batch.numpy() if hasattr(batch, "numpy") and not isinstance(batch, np.ndarray) else batch
        return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run
