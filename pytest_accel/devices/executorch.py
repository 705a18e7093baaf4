"""The ExecuTorch backend: ``et:<delegate>`` — ``et:xnnpack`` (Arm and x86 CPUs), ``et:qnn`` (Qualcomm NPUs),
``et:openvino`` (Intel), ``et:coreml`` (Apple), ``et:vulkan`` (GPUs), ``et:mediatek``, ``et:samsung``, ``et:arm``
(Ethos-U).

Mobile and edge NPUs ship through ExecuTorch delegates: the PyTorch module is exported (``torch.export``), its
supported subgraphs lowered to the delegate by that delegate's partitioner, and the program written as a ``.pte``
that the ExecuTorch runtime runs. The device is chosen at export time, so a device here is a delegate: it opens
where the runtime was built with the delegate's backend and the partitioner (with the SDK it needs) imports.
Operators the partitioner does not take run on the host's portable kernels, silently: :meth:`EtCompiled.delegation`
counts them. pytest-accel lowers to XNNPACK so far; the other delegates are recognised, checked for and named when
absent, and refuse to compile with what is missing.

Registered through the ``pytest_accel.backends`` entry point, as a vendor's backend would be. Importing this module
imports nothing of ExecuTorch or PyTorch; opening a device does.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from pytest_accel.devices import Backend, Device, DeviceInfo, DeviceUnavailable, ExecutionPrecision, host_cpu_info
from pytest_accel.devices.compiled import Delegation
from pytest_accel.errors import WorkloadUnsupported
from pytest_accel.paths import write_atomically

INSTALL = "pip install 'pytest-accel[executorch]'"


@dataclass(frozen=True)
class Delegate:
    """What one ExecuTorch delegate needs: its backend compiled into the runtime, its partitioner importable (with
    the SDK that one imports), and where an SDK is found through the environment, that variable."""

    title: str
    vendor: str
    runtime_backend: str  # the name the runtime registers it under
    partitioner: str  # module:class
    needs: str
    sdk_env: str | None = None


DELEGATES: dict[str, Delegate] = {
    "xnnpack": Delegate("XNNPACK", "", "XnnpackBackend",
                        "executorch.backends.xnnpack.partition.xnnpack_partitioner:XnnpackPartitioner", INSTALL),
    "qnn": Delegate("Qualcomm AI Engine Direct", "Qualcomm", "QnnBackend",
                    "executorch.backends.qualcomm.partition.qnn_partitioner:QnnPartitioner",
                    "Qualcomm's QNN SDK, found through $QNN_SDK_ROOT", sdk_env="QNN_SDK_ROOT"),
    "openvino": Delegate("OpenVINO", "Intel", "OpenvinoBackend",
                         "executorch.backends.openvino.partitioner:OpenvinoPartitioner",
                         "openvino==2025.4.1 and nncf==3.2.0, the versions ExecuTorch's OpenVINO delegate is "
                         "built for"),
    "coreml": Delegate("Core ML", "Apple", "CoreMLBackend",
                       "executorch.backends.apple.coreml.partition:CoreMLPartitioner",
                       "an ExecuTorch runtime built with Core ML (macOS; the Linux wheel has none)"),
    "vulkan": Delegate("Vulkan", "", "VulkanBackend",
                       "executorch.backends.vulkan.partitioner.vulkan_partitioner:VulkanPartitioner",
                       "an ExecuTorch runtime built with EXECUTORCH_BUILD_VULKAN=ON"),
    "mediatek": Delegate("MediaTek NeuroPilot", "MediaTek", "NeuropilotBackend",
                         "executorch.backends.mediatek.partitioner:NeuropilotPartitioner",
                         "MediaTek's NeuroPilot SDK (mtk_converter) and a runtime built with it"),
    "samsung": Delegate("Samsung Exynos", "Samsung", "EnnBackend",
                        "executorch.backends.samsung.partition.enn_partitioner:EnnPartitioner",
                        "Samsung's Exynos AI LiteCore SDK and a runtime built with it"),
    "arm": Delegate("Arm Ethos-U", "Arm", "EthosUBackend",
                    "executorch.backends.arm.ethosu.partitioner:EthosUPartitioner",
                    "Arm's TOSA tools (tosa_serializer), the Vela compiler and a runtime built with Ethos-U"),
}
#: the delegates pytest-accel lowers to (the rest need compile specs for their SoC or target)
LOWERED = ("xnnpack",)
#: operator types that do the arithmetic, as the lowered graph names them
COMPUTE_OPS = frozenset({"aten.convolution", "aten.conv2d", "aten.linear", "aten.addmm", "aten.mm", "aten.bmm"})
#: graph nodes that are bookkeeping, not operators: tuple access and the call into a delegate itself
_NOT_OPERATORS = frozenset({"getitem", "executorch_call_delegate"})
_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "int8", "uint8": "int8"}
#: the calibration probe: a 256 x 256 product with fixed weights (a product of two inputs stays on the host)
_PROBE_SIZE = 256


def parse_spec(spec: str) -> str | None:
    prefix, sep, delegate = spec.partition(":")
    if prefix.lower() != "et" or not sep:
        return None
    name = delegate.strip().lower()
    return f"et:{name}" if name in DELEGATES else None


def _import_executorch(spec: str) -> tuple[Any, str]:
    try:
        from executorch import version
        from executorch.runtime import Runtime
    except ImportError as error:
        raise DeviceUnavailable(spec, f"executorch is not installed ({error}); {INSTALL}") from None
    return Runtime.get(), str(version.__version__)


def _partitioner_class(delegate: Delegate) -> Any:
    module, _, name = delegate.partitioner.partition(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def _partitioner_import_error(delegate: Delegate) -> str | None:
    """Why the delegate's partitioner does not import, or None; the first try's answer, since a second import of a
    package that failed half-way can succeed on the modules the first left behind (OpenVINO's without nncf)."""
    try:
        _partitioner_class(delegate)
    except Exception as error:  # noqa: BLE001 - a partitioner's SDK fails to import in many ways; each says why
        first = (str(error).strip().splitlines() or [""])[0]
        return f"{type(error).__name__}: {first}"
    return None


def check_delegate(spec: str, delegate: Delegate) -> tuple[Any, str]:
    """The runtime and ExecuTorch's version where ``delegate`` can be used here; else DeviceUnavailable naming what
    is missing and what to install."""
    runtime, version = _import_executorch(spec)
    present = sorted(runtime.backend_registry.registered_backend_names)
    if delegate.runtime_backend not in present:
        raise DeviceUnavailable(spec, f"this ExecuTorch runtime (executorch {version}) was built without "
                                      f"{delegate.runtime_backend}; it has {', '.join(present) or 'none'}; "
                                      f"{spec} needs {delegate.needs}")
    if delegate.sdk_env and not os.environ.get(delegate.sdk_env):
        raise DeviceUnavailable(spec, f"${delegate.sdk_env} is not set; {spec} needs {delegate.needs}")
    failure = _partitioner_import_error(delegate)
    if failure is not None:
        raise DeviceUnavailable(spec, f"its partitioner ({delegate.partitioner}) does not import: {failure}; {spec} "
                                      f"needs {delegate.needs}")
    return runtime, version


def _op_name(target: Any) -> str:
    """``aten.convolution`` for a graph node's target (ATen and edge-dialect operators both)."""
    name = target.name() if callable(getattr(target, "name", None)) else getattr(target, "__name__", str(target))
    return str(name).replace("::", ".")


def _dtype_of(node: Any) -> str:
    value = node.meta.get("val")
    value = value[0] if isinstance(value, (tuple, list)) and value else value
    dtype = str(getattr(value, "dtype", "")).removeprefix("torch.")
    return _DTYPES.get(dtype, dtype or "unknown")


def lowered_graph_facts(graph_module: Any) -> dict[str, Any]:
    """From the lowered program's graph: the operators inside delegated subgraphs and those left on the host, and
    every operator's output dtype (what the delegate was given to compute in)."""
    delegated, partitions = 0, 0
    on_host: Counter[str] = Counter()
    precision: Counter[tuple[str, str]] = Counter()
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.name.startswith("lowered_module_"):
            partitions += 1
            for inner in getattr(graph_module, node.name).original_module.graph.nodes:
                if inner.op == "call_function" and _op_name(inner.target) not in _NOT_OPERATORS:
                    delegated += 1
                    precision[(_op_name(inner.target), _dtype_of(inner))] += 1
        elif node.op == "call_function" and _op_name(node.target) not in _NOT_OPERATORS:
            on_host[_op_name(node.target)] += 1
            precision[(_op_name(node.target), _dtype_of(node))] += 1
    return {"delegated_ops": delegated, "total_ops": delegated + sum(on_host.values()), "partitions": partitions,
            "on_host": dict(on_host), "precision": [[op, dtype, count] for (op, dtype), count in precision.items()]}


class EtCompiled:
    """One lowered program's ``forward``, run synchronously on host arrays, with what its lowering recorded."""

    def __init__(self, method: Any, static_batch: int, facts: dict[str, Any]) -> None:
        import torch

        self.torch = torch
        self.method = method
        self.static_batch: int | None = static_batch
        self.facts = facts

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        import numpy as np

        tensors = [self.torch.from_numpy(np.ascontiguousarray(array)) for array in inputs]
        return [output.numpy() for output in self.method.execute(tensors)]

    def execution_precision(self) -> ExecutionPrecision:
        """Compute operations per output dtype in the lowered graph: what the delegate and the host kernels were
        given to compute in (XNNPACK computes in the dtype it is given; it lowers nothing on its own)."""
        counts = {(op, dtype): count for op, dtype, count in self.facts["precision"]}
        return ExecutionPrecision.from_counts(counts, COMPUTE_OPS)

    def delegation(self) -> Delegation:
        return Delegation(self.facts["delegated_ops"], self.facts["total_ops"], self.facts["partitions"],
                          self.facts["on_host"])


class EtDevice(Device):
    runtime = "executorch"

    def __init__(self, spec: str, runtime: Any, version: str) -> None:
        super().__init__(spec, ExecuTorchBackend.name)
        import torch

        self.torch = torch
        self.delegate_name = spec.partition(":")[2]
        self.delegate = DELEGATES[self.delegate_name]
        self.et_runtime = runtime
        self.version = version
        self.threads = torch.get_num_threads()  # the suites' thread count, as PyTorch devices use it
        from executorch.extension.pybindings import portable_lib

        if portable_lib._threadpool_get_thread_count() != self.threads:
            portable_lib._unsafe_reset_threadpool(self.threads)
        self._probe: Callable[[], None] | None = None

    @property
    def is_host_cpu(self) -> bool:
        return self.delegate_name == "xnnpack"

    @property
    def host_in_key(self) -> bool:
        return not self.is_host_cpu

    @property
    def key_prefix(self) -> str:
        return f"et-{self.delegate_name}"

    def settings(self) -> str:
        """What else than the module and its shapes decides the program: the delegate and the software lowering it."""
        return f"{self.delegate_name}-et{self.version}-torch{self.torch.__version__.split('+')[0]}"

    def describe(self) -> DeviceInfo:
        runtime = {"executorch": self.version, "torch": self.torch.__version__}
        extra = {"delegate": self.delegate_name, "threads": str(self.threads),
                 "runtime_backends": ",".join(sorted(self.et_runtime.backend_registry.registered_backend_names))}
        if self.is_host_cpu:
            return host_cpu_info(self.backend_name, self.spec, runtime, extra)
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor=self.delegate.vendor,
                          model=self.delegate.title, runtime=runtime, extra=extra)

    def compile_torch(self, module: Any, example_inputs: tuple[Any, ...], *, cache_key: str, cache_dir: Path,
                      max_batch: int = 1) -> EtCompiled:
        """Export ``module`` for the example's shapes and lower it to the delegate, once: the ``.pte`` and what its
        lowering recorded are kept under ``cache_dir`` by ``cache_key`` and :meth:`settings`. The batch is fixed at
        the example's (the runner splits larger batches): a batch dimension exported dynamic lowered, but the
        program failed at run time on host tensors between delegated subgraphs."""
        folder = cache_dir / "executorch"
        name = f"{cache_key}-{self.settings()}"
        program, facts_file = folder / f"{name}.pte", folder / f"{name}.json"
        if not (program.is_file() and facts_file.is_file()):
            folder.mkdir(parents=True, exist_ok=True)
            data, facts = self._lower(module, example_inputs)
            write_atomically(facts_file, lambda path: path.write_text(json.dumps(facts, sort_keys=True)))
            write_atomically(program, lambda path: path.write_bytes(data))
        facts = json.loads(facts_file.read_text(encoding="utf-8"))
        method = self.et_runtime.load_program(program).load_method("forward")
        return EtCompiled(method, int(example_inputs[0].shape[0]), facts)

    def _lower(self, module: Any, example_inputs: tuple[Any, ...]) -> tuple[bytes, dict[str, Any]]:
        if self.delegate_name not in LOWERED:
            raise WorkloadUnsupported(f"{self.spec}: pytest-accel lowers to {', '.join(LOWERED)} so far; lowering to "
                                      f"{self.delegate.title} needs its compile specs (SoC or target), not set here")
        from executorch.exir import to_edge_transform_and_lower

        start = time.perf_counter()
        exported = self.torch.export.export(module, example_inputs)
        edge = to_edge_transform_and_lower(exported, partitioner=[_partitioner_class(self.delegate)()])
        facts = lowered_graph_facts(edge.exported_program().graph_module)
        data = bytes(edge.to_executorch().buffer)
        facts["lowering_s"] = round(time.perf_counter() - start, 2)
        return data, facts

    def calibration_probe(self) -> Callable[[], None] | None:
        """A 256² product with fixed weights lowered to the same delegate: the same runtime, the same threads."""
        if self._probe is None:
            import numpy as np

            from pytest_accel.environment import cache_dir

            rng = np.random.default_rng(0)
            linear = self.torch.nn.Linear(_PROBE_SIZE, _PROBE_SIZE, bias=False).eval()
            with self.torch.no_grad():
                linear.weight.copy_(self.torch.from_numpy(rng.standard_normal((_PROBE_SIZE,) * 2, dtype=np.float32)))
            example = (self.torch.zeros((_PROBE_SIZE, _PROBE_SIZE)),)
            compiled = self.compile_torch(linear, example, cache_key=f"probe-linear{_PROBE_SIZE}",
                                          cache_dir=cache_dir())
            feeds = [rng.standard_normal((_PROBE_SIZE, _PROBE_SIZE), dtype=np.float32)]

            def probe() -> None:
                compiled.run(feeds)

            self._probe = probe
        return self._probe


class ExecuTorchBackend(Backend):
    name = "executorch"
    manifest_path = Path(__file__).with_name("executorch_manifest.toml")
    grammar = f"et:<delegate> with a delegate of {', '.join(DELEGATES)} (et:xnnpack)"

    def parse(self, spec: str) -> str | None:
        return parse_spec(spec)

    def discover(self) -> list[str]:
        found = []
        for name, delegate in DELEGATES.items():
            try:
                check_delegate(f"et:{name}", delegate)
            except DeviceUnavailable:
                continue
            found.append(f"et:{name}")
        return found

    def open(self, spec: str) -> Device:
        canonical = parse_spec(spec)
        assert canonical is not None, spec
        runtime, version = check_delegate(canonical, DELEGATES[canonical.partition(":")[2]])
        return EtDevice(canonical, runtime, version)


__all__ = ["DELEGATES", "EtCompiled", "EtDevice", "ExecuTorchBackend", "lowered_graph_facts", "parse_spec"]
