"""Where each node of an ONNX Runtime session ran, and whether what ran on the CPU was compute or shape bookkeeping.

GPU execution providers (CUDA, TensorRT, ...) deliberately leave shape arithmetic on the CPU: ``Shape`` gives a
host tensor, and ONNX Runtime places every node that only consumes host tensors (``Gather``/``Concat``/
``Unsqueeze`` on shapes, anchor grids built with ``Range``/``Cast`` from those shapes) on the CPU provider,
because a copy to the GPU would cost more than the arithmetic. That is by design and costs nothing measurable;
compute on the CPU is not. So a node on the CPU is *bookkeeping* when, in the model's graph, all its inputs derive
from initializers, constants and ``Shape``/``Size`` outputs only — never from the data a graph input carries —
and *compute* otherwise. Nodes the optimiser created (fusions, layout changes) are not in the model file; they
count as bookkeeping only when every output is an int64 or bool tensor (shapes and masks of shapes), else as
compute: the check errs on the side of failing.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_accel.devices import ExecutionPrecision

CPU_PROVIDER = "CPUExecutionProvider"
_SHAPE_OPS = ("Shape", "Size")
_SHAPE_LIKE_TYPES = ("int64", "bool")


@dataclass(frozen=True)
class PlacedNode:
    name: str
    op: str
    provider: str
    output_types: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.name} ({self.op})"


def profile_options(options: Any) -> tempfile.TemporaryDirectory[str]:
    """Turn profiling on in ``options``; the returned folder holds the profile until it is cleaned up."""
    folder = tempfile.TemporaryDirectory(prefix="accel-ort-profile-")
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(folder.name) / "profile")
    return folder


def profiled_placement(session: Any, feeds: dict[str, Any]) -> list[PlacedNode]:
    """Run ``session`` (created with profiling on) once on ``feeds`` and read where each node ran. Profiling stops
    here, so later runs are not slowed by it."""
    session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    placed: dict[str, PlacedNode] = {}
    for event in events:
        args = event.get("args", {})
        if event.get("cat") != "Node" or "provider" not in args:
            continue
        name = event["name"].removesuffix("_kernel_time")
        outputs = tuple(next(iter(entry)) for entry in args.get("output_type_shape", []) if entry)
        placed[name] = PlacedNode(name, args.get("op_name", "?"), args["provider"], outputs)
    return list(placed.values())


@dataclass(frozen=True)
class GraphNodes:
    """The node names of a model file, and which of them are shape bookkeeping."""

    names: frozenset[str]
    host_side: frozenset[str]


def graph_nodes(model: str | bytes) -> GraphNodes:
    """Read ``model`` (a path or serialised bytes): its node names and those that compute only from initializers,
    constants and tensor shapes. Empty without the onnx package, so every CPU node then counts as compute."""
    try:
        import onnx
    except ImportError:
        return GraphNodes(frozenset(), frozenset())
    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model, load_external_data=False)
    graph = proto.graph
    host_tensors = {initializer.name for initializer in graph.initializer} | {""}  # "" marks an omitted input
    host_side: set[str] = set()
    for node in graph.node:  # ONNX graphs are stored in topological order
        if node.op_type in _SHAPE_OPS or node.op_type == "Constant" or all(i in host_tensors for i in node.input):
            host_tensors.update(node.output)
            host_side.add(node.name)
    return GraphNodes(frozenset(node.name for node in graph.node), frozenset(host_side))


def graph_input_names(model: str | bytes) -> list[str]:
    """The model's data inputs (initializers some exporters list as inputs left out), without creating a session."""
    import onnx

    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model, load_external_data=False)
    initializers = {initializer.name for initializer in proto.graph.initializer}
    return [value.name for value in proto.graph.input if value.name not in initializers]


def is_bookkeeping(node: PlacedNode, graph: GraphNodes) -> bool:
    if node.name in graph.names:
        return node.name in graph.host_side
    return bool(node.output_types) and all(t in _SHAPE_LIKE_TYPES for t in node.output_types)


def compute_on_cpu(placement: list[PlacedNode], graph: GraphNodes) -> list[PlacedNode]:
    """The nodes that ran on the CPU provider and are compute, not shape bookkeeping."""
    return [node for node in placement if node.provider == CPU_PROVIDER and not is_bookkeeping(node, graph)]


def list_nodes(nodes: list[PlacedNode], limit: int = 20) -> str:
    listed = ", ".join(node.describe() for node in nodes[:limit])
    return listed + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


#: ONNX Runtime kernels whose arithmetic is in 8-bit integers. A QDQ model's quantized Conv becomes QLinearConv only
#: where the provider has such a kernel (the CPU provider's graph optimiser fuses DequantizeLinear -> Conv ->
#: QuantizeLinear into it); elsewhere the Conv stays and computes in float between the (de)quantize nodes.
INTEGER_COMPUTE_OPS = frozenset({"QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger",
                                 "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QLinearConvTranspose"})
#: kernels computing in floating point, their precision read from their output type
FLOAT_COMPUTE_OPS = frozenset({"Conv", "FusedConv", "NhwcConv", "NhwcFusedConv", "ConvTranspose", "MatMul",
                               "FusedMatMul", "Gemm", "FusedGemm"})
_FLOAT_PRECISIONS = {"float": "fp32", "float16": "fp16", "bfloat16": "bf16", "double": "fp64"}


def kernel_precision(placement: list[PlacedNode]) -> ExecutionPrecision:
    """The precision each kernel of a profiled run computed in: int8 for the integer kernels, else its output's
    type. Fused subgraphs of compiling providers (TensorRT, OpenVINO) are neither, so they count as no compute:
    what runs inside them cannot be read from ONNX Runtime."""
    counts: Counter[tuple[str, str]] = Counter()
    for node in placement:
        if node.op in INTEGER_COMPUTE_OPS:
            precision = "int8"
        else:
            output_type = node.output_types[0] if node.output_types else "?"
            precision = _FLOAT_PRECISIONS.get(output_type, output_type)
        counts[(node.op, precision)] += 1
    return ExecutionPrecision.from_counts(counts, INTEGER_COMPUTE_OPS | FLOAT_COMPUTE_OPS)
