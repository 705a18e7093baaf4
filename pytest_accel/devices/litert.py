"""The LiteRT backend: ``litert:cpu``, ``litert:gpu``, ``litert:npu``, ``litert:npu:<vendor>``, with options after
a slash, ``litert:npu:intel_openvino/graph_backend=cpu``.

LiteRT (``ai-edge-litert``) runs ``.tflite`` models on a CPU (XNNPACK), a GPU or an NPU through a vendor's compiler
plugin and dispatch library; mobile and edge NPUs ship this way. The bundled detector is converted once with
``litert-torch`` (cached by its weights, image size and the converter's version) and compiled for the accelerator
when it is loaded. Registered through the ``pytest_accel.backends`` entry point, as a vendor's backend would be.
Importing this module imports nothing of LiteRT; opening a device does.

No silent host fallback: an accelerator's model must be taken whole by it (for NPUs: every operator in the compiler
plugin's partitions, read from the runtime's partition log), else compiling fails naming what would have run on the
host. The precision fp32 work really runs in is measured on the calibration probe (OpenVINO's plugin runs bf16 on
CPUs that have it), and parity bounds follow it.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pytest_accel.devices import (
    Backend,
    Device,
    DeviceInfo,
    DeviceSpecError,
    DeviceUnavailable,
    host_cpu_info,
)
from pytest_accel.devices.compiled import Delegation
from pytest_accel.errors import DeviceFailure

ACCELERATORS = ("cpu", "gpu", "npu")
#: vendors whose compiler plugins ai-edge-litert ships (its ``vendors/<vendor>/`` folders)
VENDORS = ("google_tensor", "intel_openvino", "mediatek", "qualcomm", "samsung")
#: options per accelerator or NPU vendor: name -> allowed values (None: a positive integer)
OPTIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "cpu": {"threads": None},
    "intel_openvino": {"graph_backend": ("cpu", "gpu", "npu"),
                       "performance_mode": ("latency", "throughput", "cumulative_throughput")},
}
#: upper-case options of the Intel plugin are OpenVINO properties, passed on in its configs map
_OV_PROPERTY = re.compile(r"^[A-Z][A-Z0-9_]*$")
GRAMMAR = ("litert:cpu, litert:gpu, litert:npu or litert:npu:<vendor> (" + ", ".join(VENDORS) + "), options after "
           "a slash: litert:cpu/threads=N, litert:npu:intel_openvino/graph_backend=cpu|gpu|npu,"
           "performance_mode=latency|throughput|cumulative_throughput,<OPENVINO_PROPERTY>=<value>")


@dataclass(frozen=True)
class LiteRtSpec:
    accelerator: str
    vendor: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    @property
    def canonical(self) -> str:
        spec = f"litert:{self.accelerator}" + (f":{self.vendor}" if self.vendor else "")
        return spec + ("/" + ",".join(f"{k}={v}" for k, v in self.options) if self.options else "")

    def option(self, name: str) -> str | None:
        return dict(self.options).get(name)


def _bad(spec: str, problem: str) -> DeviceSpecError:
    return DeviceSpecError(f"LiteRT device {spec!r}: {problem}; allowed: {GRAMMAR}")


def parse_spec(spec: str) -> LiteRtSpec | None:
    """The spec, None where it is not LiteRT's; DeviceSpecError naming the bad part of a LiteRT spec."""
    prefix, sep, rest = spec.strip().partition(":")
    if prefix.lower() != "litert" or not sep:
        return None
    body, slash, option_text = rest.partition("/")
    accelerator, _, vendor = body.lower().partition(":")
    if accelerator not in ACCELERATORS:
        raise _bad(spec, f"unknown accelerator {accelerator!r} (cpu, gpu, npu)")
    if vendor and accelerator != "npu":
        raise _bad(spec, f"a vendor plugin ({vendor!r}) is named for litert:npu only")
    if vendor and vendor not in VENDORS:
        raise _bad(spec, f"unknown NPU vendor {vendor!r} (LiteRT's plugins: {', '.join(VENDORS)})")
    if slash and not option_text:
        raise _bad(spec, "nothing after '/'")
    owner = vendor or accelerator
    allowed = OPTIONS.get(owner, {})
    options: dict[str, str] = {}
    for item in option_text.split(",") if option_text else []:
        name, equals, value = item.strip().partition("=")
        if not equals or not name or not value:
            raise _bad(spec, f"option {item!r} is not <name>=<value>")
        if owner == "intel_openvino" and _OV_PROPERTY.match(name):
            options[name] = value
            continue
        name, value = name.lower(), value.lower()
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise _bad(spec, f"unknown option {name!r} for {owner} (its options: {known})")
        values = allowed[name]
        if values is None and not (value.isdigit() and int(value) > 0) or values is not None and value not in values:
            raise _bad(spec, f"{name}={value!r} is not " + (f"one of {', '.join(values)}" if values else
                                                              "a positive integer"))
        options[name] = value
    return LiteRtSpec(accelerator, vendor or None, tuple(sorted(options.items())))


def _litert() -> Any:
    try:
        import ai_edge_litert
    except ImportError as error:
        raise DeviceUnavailable("litert", f"ai-edge-litert is not installed ({error}); pip install "
                                          "'pytest-accel[litert]'") from None
    return ai_edge_litert


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


class LiteRtDevice(Device):
    runtime = "litert"

    def __init__(self, spec: LiteRtSpec, vendor: str | None) -> None:
        super().__init__(spec.canonical, LiteRtBackend.name)
        from pytest_accel import environment

        self.litert_spec = spec
        self.vendor = vendor  # the NPU plugin in use: named in the spec, or the first the environment finds
        self.threads = int(spec.option("threads") or environment.cpu_cores())
        self.conversion_seconds: float | None = None
        self._environment = _environment(spec, vendor)
        from pytest_accel.devices.litert_model import measured_precision, probe_model

        self.fp32_runs_in = "fp32"  # stated for the probe itself, until it has measured what runs
        self._probe = self._compile(probe_model(), "the calibration probe")
        self.fp32_runs_in = measured_precision(self._probe)

    @property
    def id(self) -> str:
        return self.spec.replace(":", "-").replace("/", "-").replace("=", "-").replace(",", "+")

    @property
    def key_prefix(self) -> str:
        parts = ["litert", self.litert_spec.accelerator, self.vendor or ""]
        parts += [f"{k}-{v}" for k, v in self.litert_spec.options if k != "threads"]
        key = re.sub(r"[^a-z0-9]+", "-", "-".join(p for p in parts if p).lower()).strip("-")
        return key + (f"-t{self.threads}" if self.litert_spec.option("threads") else "")

    @property
    def on_host_cpu_hardware(self) -> bool:
        return self.litert_spec.accelerator == "cpu" or self.litert_spec.option("graph_backend") == "cpu"

    @property
    def is_host_cpu(self) -> bool:
        return self.on_host_cpu_hardware

    @property
    def host_in_key(self) -> bool:
        return not self.on_host_cpu_hardware

    def describe(self) -> DeviceInfo:
        runtime = {name: version for name, version in (("ai-edge-litert", _version("ai-edge-litert")),
                                                       ("litert-torch", _version("litert-torch"))) if version}
        if self.vendor == "intel_openvino" and _version("openvino"):
            runtime["openvino"] = str(_version("openvino"))
        extra = {"accelerator": self.litert_spec.accelerator, "fp32_runs_in": self.fp32_runs_in}
        if self.vendor:
            extra["vendor_plugin"] = self.vendor
        extra.update(self.litert_spec.options)
        if self.litert_spec.accelerator == "cpu":
            extra["threads"] = str(self.threads)
        if self.on_host_cpu_hardware:
            return host_cpu_info(self.backend_name, self.spec, runtime, extra)
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor=(self.vendor or "").split("_")[0],
                          model=f"{self.litert_spec.accelerator} {self.vendor or ''}".strip(), runtime=runtime,
                          extra=extra)

    def effective_precision(self, dtype: str) -> str:
        return self.fp32_runs_in if dtype == "fp32" else dtype

    def calibration_probe(self) -> Callable[[], None] | None:
        """The 256² fully connected layer compiled for this accelerator with the same options."""
        from pytest_accel.devices.litert_model import probe_input

        probe, feeds = self._probe, [probe_input()]
        return lambda: probe.run(feeds)

    def options(self) -> Any:
        """LiteRT's per-model options for this device: its accelerator alone (no CPU beside an accelerator), the
        suites' thread count on the CPU (LiteRT's ``hardware_accel=`` shortcut would set one), the vendor's options."""
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options

        accelerator = getattr(HardwareAccelerator, self.litert_spec.accelerator.upper())
        cpu = CpuOptions(num_threads=self.threads)
        if self.vendor != "intel_openvino":
            return Options(hardware_accelerators=accelerator, cpu_options=cpu)
        from ai_edge_litert.options import (
            IntelOpenVinoGraphBackend,
            IntelOpenVinoOptions,
            IntelOpenVinoPerformanceMode,
        )

        spec = self.litert_spec
        backend, mode = spec.option("graph_backend"), spec.option("performance_mode")
        intel = IntelOpenVinoOptions(
            graph_backend=getattr(IntelOpenVinoGraphBackend, backend.upper()) if backend else None,
            performance_mode=getattr(IntelOpenVinoPerformanceMode, mode.upper()) if mode else None,
            configs_map={k: v for k, v in spec.options if _OV_PROPERTY.match(k)})
        return Options(hardware_accelerators=accelerator, cpu_options=cpu, intel_openvino_options=intel)

    def compile_model(self, model: bytes, what: str = "the model") -> Any:
        """A ``.tflite`` model (its bytes) compiled here, held to the no-host-fallback rule: a
        :class:`~pytest_accel.devices.litert_model.LiteRtCompiled`; DeviceFailure where it would not run whole on the
        accelerator or does not compile."""
        try:
            compiled = self._compile(model, what)
        except DeviceUnavailable as error:
            raise DeviceFailure(f"{self.spec}: {error.reason}") from None
        return compiled

    def _compile(self, model: bytes, what: str) -> Any:
        """Compile a model for this device, held to the no-host-fallback rule; DeviceUnavailable where LiteRT
        refuses it."""
        from ai_edge_litert.compiled_model import CompiledModel

        from pytest_accel.devices.litert_model import (
            CompileError,
            LiteRtCompiled,
            compile_with_log,
            delegation_from_log,
            operator_counts,
            plugin_problems,
        )

        def create() -> Any:
            return CompiledModel.from_buffer(model, environment=self._environment, options=self.options())

        try:
            compiled, log = compile_with_log(create)
        except CompileError as error:
            raise DeviceUnavailable(self.spec, _one_line(f"LiteRT cannot compile {what} for it: {error}",
                                                         plugin_problems(error.log))) from None
        delegation = delegation_from_log(log) if self.litert_spec.accelerator == "npu" else None
        operators = operator_counts(model)
        if self.litert_spec.accelerator != "cpu":
            _check_accelerated(self.spec, what, compiled, delegation, operators, log,
                               needs_plugin=self.litert_spec.accelerator == "npu")
        return LiteRtCompiled(compiled, precision=self.fp32_runs_in, operators=operators, delegation=delegation,
                              static_batch=None)

    def compile_torch(self, module: Any, example_inputs: tuple[Any, ...], *, cache_key: str, cache_dir: Path,
                      max_batch: int = 1) -> Any:
        """Convert ``module`` for the example inputs' shapes (cached) and compile it here: a model with a
        ``static_batch`` (litert-torch lowers no dynamic batch of the detector), given larger batches in pieces."""
        from importlib import metadata

        from pytest_accel.devices.litert_model import converted_model

        try:
            conversion = converted_model(module, example_inputs, cache_key, cache_dir / "litert")
        except (ImportError, metadata.PackageNotFoundError) as error:
            raise DeviceFailure(f"{self.spec}: converting the PyTorch model needs litert-torch ({error}); pip install "
                                "'pytest-accel[litert]'") from None
        if conversion.seconds is not None:
            self.conversion_seconds = conversion.seconds
            self.add_info({"conversion_s": f"{conversion.seconds:.1f}"})
        compiled = self.compile_model(conversion.path.read_bytes(), conversion.path.name)
        compiled.static_batch = int(example_inputs[0].shape[0])
        delegation = compiled.delegation()
        if delegation is not None:
            self.add_info({"delegated_ops": f"{delegation.delegated_ops}/{delegation.total_ops}",
                           "partitions": str(delegation.partitions)})
        return compiled


def _one_line(message: str, problems: list[str]) -> str:
    return " ".join((message + ("; the runtime said: " + " | ".join(problems) if problems else "")).split())


def _check_accelerated(spec: str, what: str, compiled: Any, delegation: Delegation | None, operators: Any, log: str,
                       *, needs_plugin: bool) -> None:
    """DeviceFailure where the accelerator did not take the whole model: LiteRT would run the rest on the host."""
    from pytest_accel.devices.litert_model import plugin_problems

    total = sum(operators.values())
    if needs_plugin and delegation is None:
        raise DeviceFailure(_one_line(f"{spec}: no compiler plugin partitioned {what} ({total} operators); it would "
                                      "run on the host CPU", plugin_problems(log)))
    if delegation is not None and not delegation.complete:
        raise DeviceFailure(f"{spec}: the compiler plugin took {delegation.delegated_ops} of {delegation.total_ops} "
                            f"operators of {what} in {delegation.partitions} partitions; "
                            f"{delegation.total_ops - delegation.delegated_ops} would run on the host CPU "
                            f"(operators in the model: {_most(operators)})")
    if not compiled.is_fully_accelerated():
        raise DeviceFailure(_one_line(f"{spec}: LiteRT reports {what} not fully accelerated: part of its {total} "
                                      f"operators ({_most(operators)}) would run on the host CPU",
                                      plugin_problems(log)))


def _most(operators: Any) -> str:
    return ", ".join(f"{name} x{count}" for name, count in operators.most_common(8))


def _environment(spec: LiteRtSpec, vendor: str | None) -> Any:
    """A LiteRT environment: for an NPU, with the vendor's compiler plugin and dispatch library, whose own
    dependencies (the vendor's SDK) are loaded first so that a missing one is named."""
    litert = _litert()
    from ai_edge_litert.environment import Environment

    vendors = Path(litert.__file__).parent / "vendors"
    if spec.accelerator != "npu":
        # a folder without plugin libraries: left empty, LiteRT loads every vendor's compiler plugin it finds
        nowhere = str(vendors / "none")
        return Environment.create(compiler_plugin_path=nowhere, dispatch_library_path=nowhere)
    assert vendor is not None
    folder = vendors / vendor
    if vendor == "intel_openvino":
        _load_openvino(spec.canonical)
    for kind in ("compiler", "dispatch"):
        for library in sorted((folder / kind).glob("*LiteRt*")):
            try:
                ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            except OSError as error:
                hint = ""
                if vendor == "intel_openvino":
                    hint = (f"; it needs the OpenVINO release the missing library's name carries (.2631: openvino "
                            f"2026.3.1), here openvino {_version('openvino')}: install that one in an environment "
                            "of its own")
                raise DeviceUnavailable(spec.canonical, f"LiteRT's {vendor} {kind} library cannot be loaded: {error}"
                                                        f"{hint}") from None
    return Environment.create(compiler_plugin_path=str(folder / "compiler"), dispatch_library_path=str(folder /
                                                                                                      "dispatch"))


def _load_openvino(spec: str) -> None:
    """The OpenVINO libraries the Intel plugin links to, loaded from the installed openvino package (its wheel keeps
    them outside the loader's search path). The plugin needs one OpenVINO release: its libraries' names carry it
    (``libopenvino.so.2631`` is 2026.3.1)."""
    try:
        import openvino
    except ImportError:
        raise DeviceUnavailable(spec, "LiteRT's Intel OpenVINO plugin needs the openvino package (the release it was "
                                      "built against, openvino==2026.3.1 for ai-edge-litert 2.3)") from None
    libs = Path(openvino.__file__).parent / "libs"
    for pattern in ("libopenvino.so.*", "libopenvino_tensorflow_lite_frontend.so.*"):
        for library in sorted(libs.glob(pattern)):
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)


class LiteRtBackend(Backend):
    name = "litert"
    manifest_path = Path(__file__).with_name("litert_manifest.toml")
    grammar = GRAMMAR

    def parse(self, spec: str) -> str | None:
        parsed = parse_spec(spec)
        return parsed.canonical if parsed else None

    def discover(self) -> list[str]:
        """litert:cpu, and litert:npu:<vendor> for each vendor whose dispatch library is installed and opens here
        (GPUs are found only by compiling for them: left to an explicit --device=litert:gpu)."""
        try:
            litert = _litert()
        except DeviceUnavailable:
            return []
        from pytest_accel.devices.litert_model import iter_vendor_libraries

        found = ["litert:cpu"]
        for vendor in iter_vendor_libraries(Path(litert.__file__).parent / "vendors", "dispatch"):
            spec = LiteRtSpec("npu", vendor).canonical
            try:
                self.open(spec)
            except (DeviceUnavailable, DeviceFailure):
                continue
            found.append(spec)
        return found

    def open(self, spec: str) -> Device:
        parsed = parse_spec(spec)
        assert parsed is not None, spec
        litert = _litert()
        vendor = parsed.vendor
        if parsed.accelerator == "npu" and vendor is None:
            from pytest_accel.devices.litert_model import iter_vendor_libraries

            found = list(iter_vendor_libraries(Path(litert.__file__).parent / "vendors", "dispatch"))
            if not found:
                raise DeviceUnavailable(spec, "ai-edge-litert has no NPU dispatch library installed; available: "
                                              "litert:cpu")
            vendor = found[0]
        available = "litert:cpu"
        if vendor == "intel_openvino" and parsed.option("graph_backend") is None:
            available += ("; without an Intel NPU the plugin compiles for the CPU: "
                          "litert:npu:intel_openvino/graph_backend=cpu")
        try:
            return LiteRtDevice(parsed, vendor)
        except DeviceUnavailable as error:
            raise DeviceUnavailable(spec, f"{error.reason}; available: {available}") from None
        except DeviceFailure as error:
            raise DeviceUnavailable(spec, f"{error}; available: {available}") from None


__all__ = ["ACCELERATORS", "GRAMMAR", "LiteRtBackend", "LiteRtDevice", "LiteRtSpec", "VENDORS", "parse_spec"]
