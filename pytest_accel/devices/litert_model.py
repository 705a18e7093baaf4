"""LiteRT models for the LiteRT backend (:mod:`pytest_accel.devices.litert`): converting a PyTorch module to a
``.tflite`` model once and caching it, compiling a model for an accelerator while reading what the accelerator's
compiler plugin took, running it on host arrays, and the fixed matmul model of the calibration probe.

LiteRT's own "fully accelerated" flag counts its CPU delegate (XNNPACK) as acceleration, so a vendor plugin that
failed to load still reads "fully accelerated" under ``NPU|CPU``. What a compiler plugin took is read from the
runtime's own partition log instead ("Partitioned subgraph<0>, selected 275 ops, from a total of 275 ops. resulted
in 1 partitions."), written to the process's stderr while the model is compiled.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from pytest_accel.devices import ExecutionPrecision
from pytest_accel.devices.compiled import Delegation
from pytest_accel.paths import write_atomically

#: the runtime's log line for one subgraph partitioned by a compiler plugin
PARTITION_LINE = re.compile(r"Partitioned subgraph<(\d+)>, selected (\d+) ops, from a total of (\d+) ops\. "
                            r"resulted in (\d+) partitions\.")
#: TFLite operators that do the arithmetic (the rest move, reshape or combine data)
COMPUTE_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL",
                         "CONV_3D"})
PROBE_SIZE = 256
SIGNATURE = "serving_default"


@dataclass(frozen=True)
class Conversion:
    path: Path
    seconds: float | None  # None: taken from the cache


def converted_model(module: Any, example_inputs: tuple[Any, ...], cache_key: str, cache_dir: Path) -> Conversion:
    """The ``.tflite`` model of ``module`` for the shapes of ``example_inputs``, converted with litert-torch once and
    cached under ``cache_dir`` by ``cache_key`` and the converter's version (the accelerator compiles it at load)."""
    from importlib import metadata

    batch = int(example_inputs[0].shape[0])
    target = cache_dir / f"{cache_key}-b{batch}-litert-torch{metadata.version('litert-torch')}.tflite"
    if target.is_file():
        return Conversion(target, None)
    import litert_torch  # seconds to import (it brings JAX): only when converting

    start = time.perf_counter()
    converted = litert_torch.convert(module, example_inputs)
    write_atomically(target, lambda path: converted.export(str(path)))
    return Conversion(target, time.perf_counter() - start)


def operator_counts(model: bytes) -> Counter[str]:
    """Operators of the model's main subgraph by type (``CONV_2D``, ``LOGISTIC``, ...)."""
    from ai_edge_litert import schema_py_generated as schema

    parsed = schema.Model.GetRootAs(model, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    codes = []
    for i in range(parsed.OperatorCodesLength()):
        code = parsed.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else names.get(builtin, str(builtin)))
    graph = parsed.Subgraphs(0)
    return Counter(codes[graph.Operators(i).OpcodeIndex()] for i in range(graph.OperatorsLength()))


class _StderrCapture:
    """The native stderr (file descriptor 2) of the process, copied to a file while it is open, then echoed."""

    def __init__(self) -> None:
        self.text = ""

    def __enter__(self) -> _StderrCapture:
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile(mode="w+b")
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        data = self._file.read()
        self._file.close()
        self.text = data.decode(errors="replace")
        os.write(2, data)


class CompileError(Exception):
    """LiteRT refused to compile a model; ``log`` is what the runtime said meanwhile."""

    def __init__(self, error: Exception, log: str) -> None:
        super().__init__(str(error))
        self.log = log


def compile_with_log(create: Callable[[], Any]) -> tuple[Any, str]:
    """``create()`` (a LiteRT compiled model) and what the runtime logged while it ran; CompileError where it
    failed."""
    capture = _StderrCapture()
    failure: Exception | None = None
    with capture:
        try:
            compiled = create()
        except Exception as error:  # noqa: BLE001 - LiteRT raises RuntimeError or ValueError, by binding
            failure = error
    if failure is not None:
        raise CompileError(failure, capture.text) from None
    return compiled, capture.text


def delegation_from_log(log: str) -> Delegation | None:
    """What the compiler plugins took, over all subgraphs, from the runtime's partition lines; None where no plugin
    partitioned the model."""
    stats = PARTITION_LINE.findall(log)
    if not stats:
        return None
    selected = sum(int(s[1]) for s in stats)
    total = sum(int(s[2]) for s in stats)
    return Delegation(selected, max(total, 1), sum(int(s[3]) for s in stats))


#: warnings the runtime gives on every run that works as well: every environment after the first, every plugin
#: whose SoC does not report an SDK version
_NOISE = ("NPU accelerator could not be loaded", "unknown SDK version")


def plugin_problems(log: str) -> list[str]:
    """The runtime's warnings and errors about compiler plugins and accelerators, one line each."""
    lines = [line.strip() for line in log.splitlines()]
    keep = [line for line in lines if line.startswith(("WARNING", "ERROR", "└")) and
            any(word in line for word in ("plugin", "Plugin", "accelerat", "shared library", "adapter")) and
            not any(noise in line for noise in _NOISE)]
    return list(dict.fromkeys(keep))


class LiteRtCompiled:
    """One model compiled for one LiteRT accelerator, run synchronously on host arrays (inputs in signature order)."""

    def __init__(self, compiled: Any, *, precision: str, operators: Counter[str], delegation: Delegation | None,
                 static_batch: int | None) -> None:
        self.compiled = compiled
        self.static_batch = static_batch
        self._precision = precision
        self._operators = operators
        self._delegation = delegation
        inputs = compiled.get_input_tensor_details(SIGNATURE)
        outputs = compiled.get_output_tensor_details(SIGNATURE)
        order = compiled.get_signature_list()[SIGNATURE]
        self.input_shapes = [tuple(inputs[name]["shape"]) for name in order["inputs"]]
        self.output_shapes = [tuple(outputs[name]["shape"]) for name in order["outputs"]]
        self.inputs = compiled.create_input_buffers(0)
        self.outputs = compiled.create_output_buffers(0)

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        import numpy as np

        if len(inputs) != len(self.inputs):
            raise ValueError(f"LiteRT model given {len(inputs)} inputs; it takes {len(self.inputs)}")
        for buffer, array, shape in zip(self.inputs, inputs, self.input_shapes, strict=True):
            if tuple(array.shape) != shape:
                raise ValueError(f"LiteRT model input of shape {tuple(array.shape)}; it was compiled for {shape}")
            buffer.write(np.ascontiguousarray(array, dtype=np.float32))
        self.compiled.run_by_index(0, self.inputs, self.outputs)
        return [buffer.read(int(np.prod(shape)), np.float32).reshape(shape)
                for buffer, shape in zip(self.outputs, self.output_shapes, strict=True)]

    def execution_precision(self) -> ExecutionPrecision:
        """The model's compute operators, each in the precision this accelerator runs fp32 work in (measured on the
        calibration probe, compiled with the same options: LiteRT does not report it per operator)."""
        return ExecutionPrecision.from_counts({(op, self._precision): n for op, n in self._operators.items()},
                                              COMPUTE_OPS)

    def delegation(self) -> Delegation | None:
        return self._delegation


def probe_model(weights: Any = None) -> bytes:
    """A LiteRT model of one fp32 fully connected layer, ``a @ weights.T`` for a square ``a`` of the weights' size
    (default: the probe's fixed 256 x 256 weights), built directly as a flatbuffer (no converter needed)."""
    import numpy as np

    weights = probe_weights() if weights is None else np.ascontiguousarray(weights, dtype=np.float32)
    size = weights.shape[0]
    if weights.shape != (size, size):
        raise ValueError(f"fully connected weights of shape {weights.shape}: square ones only")
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    def tensor(name: str, buffer: int) -> Any:
        made = schema.TensorT()
        made.name, made.shape, made.type, made.buffer = name, [size, size], schema.TensorType.FLOAT32, buffer
        return made

    def buffer(data: bytes | None = None) -> Any:
        made = schema.BufferT()
        if data is not None:
            made.data = np.frombuffer(data, dtype=np.uint8)
        return made

    def mapped(name: str, index: int) -> Any:
        made = schema.TensorMapT()
        made.name, made.tensorIndex = name, index
        return made

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0, 1, -1], [2]
    operator.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    operator.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    graph.name, graph.operators, graph.inputs, graph.outputs = "main", [operator], [0], [2]
    graph.tensors = [tensor("a", 1), tensor("w", 2), tensor("y", 3)]
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE, 0
    signature.inputs, signature.outputs = [mapped("a", 0)], [mapped("y", 2)]
    model = schema.ModelT()
    model.version, model.description, model.operatorCodes, model.subgraphs = 3, "accel probe", [code], [graph]
    model.buffers = [buffer(), buffer(), buffer(weights.tobytes()), buffer()]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def probe_weights() -> Any:
    import numpy as np

    return np.random.default_rng(1).standard_normal((PROBE_SIZE, PROBE_SIZE), dtype=np.float32)


def probe_input() -> Any:
    import numpy as np

    return np.random.default_rng(0).standard_normal((PROBE_SIZE, PROBE_SIZE), dtype=np.float32)


def measured_precision(probe: LiteRtCompiled) -> str:
    """The precision the probe's fp32 matmul ran in, from its error against float64: fp32 rounding gives ~1e-7,
    fp16 inputs ~3e-4 (10 mantissa bits), bf16 inputs ~2e-3 (7 bits)."""
    import numpy as np

    a, w = probe_input(), probe_weights()
    [out] = probe.run([a])
    expected = a.astype(np.float64) @ w.astype(np.float64).T
    error = float(np.linalg.norm(out - expected) / np.linalg.norm(expected))
    if error < 1e-5:
        return "fp32"
    return "fp16" if error < 1e-3 else "bf16"


def iter_vendor_libraries(vendors: Path, kind: str) -> Iterator[str]:
    """Vendors whose ``<vendor>/<kind>/`` folder holds a LiteRT library (``compiler`` plugins, ``dispatch``)."""
    if not vendors.is_dir():
        return
    for folder in sorted(vendors.iterdir()):
        if any((folder / kind).glob("*LiteRt*")):
            yield folder.name
