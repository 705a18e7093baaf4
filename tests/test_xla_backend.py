"""The XLA backend (xla, xla:N) and the compiling-runtime counters it reports.

Everywhere: the grammar, what an environment without a loadable torch_xla is told, and the device's lazy-runtime
duties (synchronize launches and waits, outputs kept until then, torch_xla's metrics read as counters) on an honest
fake of torch_xla, whose launched work finishes on a thread of its own; the plugin's bounds on steady-state
recompilations on a fake compiling device. Where torch_xla is importable (tox -e xla, PJRT_DEVICE=CPU): the backend
contract and the counters on the real runtime.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_accel.devices import Device, DeviceUnavailable
from pytest_accel.devices.counters import RuntimeCounters, counter_metrics
from pytest_accel.devices.xla import TorchXla, XlaBackend, XlaDevice
from pytest_accel.options import OPT_DEVICE, OPT_REPORT, OPT_SKIP_UNAVAILABLE
from pytest_accel.testing import BackendContract
from tests.helpers import load_json

HAS_TORCH_XLA = find_spec("torch_xla") is not None
needs_torch_xla = pytest.mark.skipif(not HAS_TORCH_XLA, reason="torch_xla is not installed (tox -e xla has it)")
MATMUL_SUITE = Path(__file__).parents[1] / "suites" / "test_matmul.py"


@pytest.mark.parametrize(("spec", "canonical"), [("xla", "xla"), ("xla:0", "xla:0"), ("XLA:3", "xla:3"),
                                                 ("xla:01", "xla:1")])
def test_grammar(spec: str, canonical: str) -> None:
    assert XlaBackend().parse(spec) == canonical


@pytest.mark.parametrize("spec", ["xla:", "xla:x", "xla:1:2", "xlab", "cpu", "tpu", "ort:xla", "auto"])
def test_specs_it_does_not_own(spec: str) -> None:
    assert XlaBackend().parse(spec) is None


def _versions(monkeypatch: pytest.MonkeyPatch, **installed: str) -> None:
    """torch and torch_xla installed in these versions, or not at all; every other package as it is."""
    real = metadata.version

    def version(name: str) -> str:
        if name not in ("torch", "torch_xla"):
            return real(name)
        if name in installed:
            return installed[name]
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)


def test_without_torch_xla_the_reason_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(monkeypatch, torch="2.14.1")
    with pytest.raises(DeviceUnavailable) as error:
        XlaBackend().open("xla")
    assert "torch_xla is not installed" in error.value.reason
    reason = error.value.reason
    assert "pip install 'torch==2.9.*' 'torch_xla==2.9.*'" in reason and "PJRT_DEVICE=CPU" in reason
    assert XlaBackend().discover() == []


def test_a_torch_xla_built_for_another_torch_says_both_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """What loading torch_xla 2.9 beside torch 2.14 does: the extension fails on an undefined symbol."""
    _versions(monkeypatch, torch="2.14.1", torch_xla="2.9.0")

    def fails_to_load(self: TorchXla) -> None:
        raise ImportError("_XLAC.cpython-311-x86_64-linux-gnu.so: undefined symbol: _ZN5torch4lazy13MetricFnValueEd")

    monkeypatch.setattr(TorchXla, "__init__", fails_to_load)
    with pytest.raises(DeviceUnavailable, match=r"torch_xla 2\.9\.0 is installed but fails to load beside torch "
                                                r"2\.14\.1 \(.*undefined symbol.*\); pip install"):
        XlaBackend().open("xla:1")


def test_device_xla_without_torch_xla_stops_or_skips_with_the_reason(pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(monkeypatch, torch="2.14.1")
    pytester.makepyfile("def test_uses(device):\n    pass\n")
    stopped = pytester.runpytest(f"{OPT_DEVICE}=xla")
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR
    stopped.stderr.fnmatch_lines(["*--device=xla is not available*torch_xla is not installed*pip install*"])
    skipped = pytester.runpytest(f"{OPT_DEVICE}=xla", OPT_SKIP_UNAVAILABLE, "-rs")
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*torch_xla is not installed*"])


class FakeLazyRuntime:
    """torch_xla as the device uses it, lazily: work is traced into ``traced``, ``sync()`` launches it on a thread
    (as PJRT runs a graph asynchronously) and ``wait_device_ops()`` joins; metrics and counters as torch_xla keeps
    them (times in nanoseconds, fallbacks by operator name)."""

    def __init__(self, work_seconds: float = 0.08) -> None:
        import torch

        self.work_seconds, self.traced, self.finished = work_seconds, 0, 0
        self._running: list[threading.Thread] = []
        self.counters: dict[str, int] = {"UncachedCompile": 3, "aten::nonzero": 2, "aten::_local_scalar_dense": 7}
        self.metrics: dict[str, tuple[int, float, list[Any]]] = {"CompileTime": (3, 4.5e9, []),
                                                                 "ExecuteTime": (9, 2e8, [])}
        self.torch_xla, self.xm, self.met, self.xr = self, self, self, self
        self.version = "2.9.0"
        self._torch = torch

    # torch_xla
    def device(self, index: int) -> Any:
        return self._torch.device("cpu")

    def sync(self) -> None:
        launched, self.traced = self.traced, 0
        if launched:
            thread = threading.Thread(target=self._run, args=(launched,))
            self._running.append(thread)
            thread.start()

    def _run(self, graphs: int) -> None:
        time.sleep(self.work_seconds)
        self.finished += graphs

    # torch_xla.core.xla_model
    def wait_device_ops(self) -> None:
        while self._running:
            self._running.pop().join()

    def xla_device_hw(self, device: Any) -> str:
        return "TPU"

    def xla_device_kind(self, device: Any) -> str:
        return "TPU v5 lite"

    # torch_xla.debug.metrics
    def metric_data(self, name: str) -> tuple[int, float, list[Any]] | None:
        return self.metrics.get(name)

    def counter_value(self, name: str) -> int | None:
        return self.counters.get(name)

    def executed_fallback_ops(self) -> list[str]:
        return [name for name in self.counters if name.startswith("aten::")]

    # torch_xla.runtime
    def device_type(self) -> str:
        return "TPU"


@pytest.fixture
def fake_xla() -> FakeLazyRuntime:
    return FakeLazyRuntime()


@pytest.fixture
def fake_device(fake_xla: FakeLazyRuntime) -> XlaDevice:
    return XlaDevice("xla:0", fake_xla, 0)  # type: ignore[arg-type]


def test_synchronize_launches_what_was_traced_and_waits_for_it(fake_xla: FakeLazyRuntime,
                                                              fake_device: XlaDevice) -> None:
    fake_xla.traced = 1
    start = time.perf_counter()
    fake_device.synchronize()
    assert fake_xla.finished == 1 and time.perf_counter() - start >= fake_xla.work_seconds
    fake_xla.traced = 1
    fake_device.mark_step()  # a training step's end: launched, not waited for
    assert fake_xla.finished == 1
    fake_device.synchronize()
    assert fake_xla.finished == 2


def test_prepared_modules_outputs_live_until_the_next_synchronize(fake_device: XlaDevice) -> None:
    """A lazy output nobody holds is never computed: a timed forward whose result is dropped would time nothing."""
    import torch

    module = fake_device.prepare_module(torch.nn.Linear(4, 2))
    output = weakref.ref(module(torch.ones(1, 4)))
    gc.collect()
    assert output() is not None
    fake_device.synchronize()
    gc.collect()
    assert output() is None


def test_counters_are_torch_xlas_metrics_with_scalar_reads_left_out(fake_xla: FakeLazyRuntime,
                                                                    fake_device: XlaDevice) -> None:
    before = fake_device.runtime_counters()
    assert before == RuntimeCounters(compilations=3, compile_seconds=4.5, executions=9, execute_seconds=0.2,
                                     host_fallbacks={"aten::nonzero": 2})
    fake_xla.counters |= {"UncachedCompile": 4, "aten::nonzero": 5, "aten::nms": 1}
    fake_xla.metrics["CompileTime"] = (4, 5.0e9, [])
    window = fake_device.runtime_counters() - before
    assert (window.compilations, window.compile_seconds) == (1, pytest.approx(0.5))
    assert window.host_fallbacks == {"aten::nms": 1, "aten::nonzero": 3} and window.fallback_calls == 4


def test_a_tpu_is_keyed_by_its_kind_and_the_host_and_runs_fp32_as_xla_is_told(fake_device: XlaDevice) -> None:
    info = fake_device.describe()
    assert (info.vendor, info.model, info.runtime["torch_xla"]) == ("Google", "TPU v5 lite", "2.9.0")
    assert fake_device.key.startswith("xla-google-tpu-v5-lite-on-")
    assert not fake_device.is_host_cpu and fake_device.claims_determinism is False
    assert fake_device.supported_dtypes == ("fp32", "bf16")


def test_counter_metrics_bound_the_steady_state_at_zero() -> None:
    warm = RuntimeCounters(compilations=2, compile_seconds=1.5)
    steady = RuntimeCounters(compilations=1, compile_seconds=0.4, executions=20, host_fallbacks={"aten::nonzero": 20})
    metrics = {m.name.rpartition(".")[2]: m for m in counter_metrics("model", warm, steady)}
    assert metrics["compile_time"].value == 1.5 and metrics["compile_time"].kind == "startup"
    assert (metrics["steady_compilations"].value, metrics["steady_compilations"].limit) == (1, 0.0)
    assert metrics["host_fallbacks"].value == 20 and "aten::nonzero x20" in (metrics["host_fallbacks"].limit_reason
                                                                              or "")


#: A compiling runtime in plain Python: each input shape it has not seen compiles once (the workload's shape is read
#: from shapes.txt, one per call, cycling), and it counts as torch_xla does.
COMPILING_CONFTEST = """
from pathlib import Path

from pytest_accel.devices import Backend, Device, DeviceInfo
from pytest_accel.devices.counters import RuntimeCounters


class CompilingDevice(Device):
    runtime = "graphs"

    def __init__(self, spec, backend_name):
        super().__init__(spec, backend_name)
        self.compiled, self.calls = set(), 0

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="test", model="graph compiler")

    def run(self, shape):
        self.calls += 1
        self.compiled.add(shape)

    def runtime_counters(self):
        return RuntimeCounters(compilations=len(self.compiled), compile_seconds=0.25 * len(self.compiled),
                               executions=self.calls)


class CompilingBackend(Backend):
    name = "graphs"
    grammar = "graphs"

    def parse(self, spec):
        return spec if spec == "graphs" else None

    def discover(self):
        return ["graphs"]

    def open(self, spec):
        return CompilingDevice(spec, self.name)


def pytest_accel_register_backends(registry):
    registry.register(CompilingBackend())
"""

COMPILING_TEST = """
import itertools

def test_model(accel, device):
    shapes = itertools.cycle(open("shapes.txt").read().split())
    accel.check(*accel.measure_latency("model", lambda: device.run(next(shapes))).metrics())
"""


def test_a_recompilation_after_warm_up_fails_the_test(pytester: pytest.Pytester) -> None:
    """One input shape: compiled in the first run, none after. A shape that changes with every call: compiled
    again in the steady state, and the test fails on that bound alone."""
    pytester.makeconftest(COMPILING_CONFTEST)
    pytester.makepyfile(test_model=COMPILING_TEST)
    pytester.path.joinpath("shapes.txt").write_text("1x3x320x320")
    steady = pytester.runpytest(f"{OPT_DEVICE}=graphs", "--accel-profile=quick", "--benchmark-disable",
                                f"{OPT_REPORT}=r.json")
    steady.assert_outcomes(passed=1)
    metrics = {m["name"]: m for r in load_json(pytester.path / "r.json")["results"] for m in r["metrics"]}
    assert metrics["model.warmup_compilations"]["value"] == 1 and metrics["model.compile_time"]["value"] == 0.25
    assert metrics["model.steady_compilations"]["value"] == 0
    pytester.path.joinpath("shapes.txt").write_text(" ".join(f"1x3x{size}x{size}" for size in range(1, 1000)))
    changing = pytester.runpytest(f"{OPT_DEVICE}=graphs", "--accel-profile=quick", "--benchmark-disable")
    changing.assert_outcomes(failed=1)
    changing.stdout.fnmatch_lines(["*model.steady_compilations [[]parity[]]: obtained *, expected <= 0*compiled "
                                   "again after warm-up*"])
    assert "model.host_fallbacks" not in "".join(line for line in changing.outlines if "obtained" in line)


# -- the real runtime (tox -e xla) ---------------------------------------------------------------------------------


@needs_torch_xla
class TestXlaContract(BackendContract):
    backend = XlaBackend()
    valid_specs = ["xla", "xla:0"]
    invalid_specs = ["xla:", "xla:x", "xlab", "cuda", "ort:cpu"]
    absent_spec = "xla:99"

    def launch_async_work(self, device: Device) -> Callable[[], bool]:
        """A chain of matmuls, compiled and run once, then traced again and launched without waiting. torch_xla
        records an execution in its ExecuteTime metric when PJRT reports the result ready, so its count tells
        without blocking whether the launched graph has finished."""
        import torch
        import torch_xla
        import torch_xla.debug.metrics as met

        assert isinstance(device, XlaDevice)
        matrix = torch.randn(1024, 1024).to(device.torch_device)

        def chain() -> Any:
            product = matrix
            for _ in range(16):
                product = torch.tanh(product @ matrix)
            return product

        self.kept = chain()
        device.synchronize()
        executed = (met.metric_data("ExecuteTime") or (0,))[0]
        self.kept = chain()
        torch_xla.sync()
        return lambda: (met.metric_data("ExecuteTime") or (0,))[0] > executed


@needs_torch_xla
@pytest.mark.workload  # the matmul suite on the real runtime, and a test that recompiles every call
def test_real_xla_counts_its_compilations_and_a_recompiling_workload_fails(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("test_matmul.py").write_text(MATMUL_SUITE.read_text())
    pytester.makepyfile(test_shapes="""
import torch

def test_shapes(accel, device):
    sizes = iter(range(8, 100000))

    def changing_shape():
        device.keep(torch.ones(next(sizes), device=device.torch_device).sum())

    accel.check(*accel.measure_latency("shapes", changing_shape).metrics())
""")
    result = pytester.runpytest(f"{OPT_DEVICE}=xla", "--accel-profile=quick", f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=2, failed=1)
    metrics = {(r["nodeid"].split("::")[-1], m["name"]): m for r in load_json(pytester.path / "r.json")["results"]
               for m in r["metrics"]}
    # the matmul's graph was compiled by the parity test before its latency test: torch_xla caches it per process
    assert metrics[("test_matmul_latency[xla]", "matmul.steady_compilations")]["value"] == 0
    # the first run and the quick profile's 3 warm-up rounds each had a shape of their own, and so every round after
    assert metrics[("test_shapes[xla]", "shapes.warmup_compilations")]["value"] >= 4
    assert metrics[("test_shapes[xla]", "shapes.steady_compilations")]["value"] >= 20
    result.stdout.fnmatch_lines(["*shapes.steady_compilations [[]parity[]]: obtained *, expected <= 0*"])
