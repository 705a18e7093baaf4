from __future__ import annotations

import functools
import gc
import importlib
import importlib.metadata
import os
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from pytest_accel.environment import CACHE_ENV, cache_dir
from tests.helpers import ACCURACY_TEST, LATENCY_TEST

pytest_plugins = ["pytester"]

#: Loaded once per session before any pytester test, never at conftest load (an option test needs none of them):
#: pytester's in-process runs drop the modules first imported inside them, and a second import of torch's or
#: onnxruntime's (or numpy.fft's, via scipy) C extension then crashes or fails. Those not installed are left out:
#: a run that cannot import them cannot import them twice either.
KEPT_LOADED = ("torch", "onnxruntime", "onnx", "scipy.stats", "ultralytics",
               # torch._dynamo: the ONNX export imports it, and it imports torch._inductor.test_operators, whose
               # operators cannot be registered twice (a second in-process run that imported it failed to collect)
               "torch._dynamo",
               # ExecuTorch, where installed: a run that discovers or opens et:xnnpack imports it (and torch._dynamo,
               # which torch.manual_seed imports too), and both register operators that cannot be registered twice
               "executorch.exir", "executorch.runtime", "executorch.backends.xnnpack.partition.xnnpack_partitioner")
#: Light libraries the plugin imports lazily in every run: loaded once, not again in each in-process run (about 0.1 s
#: a run here, over hundreds of runs). hypothesis: its pytest plugin imports the package at every run's terminal
#: summary, and each fresh import is assertion-rewritten (about 1.3 s a run where nothing imported it before).
KEPT_LOADED_LIGHT = ("filelock", "psutil", "cpuinfo", "hypothesis")

#: A test that runs a real workload (a data set, an ONNX export or quantization, training, a copy of the suites),
#: pytest in a fresh process, or seconds of real timing or simulation carries this marker; `pytest tests -m "not
#: workload"` is the quick tier.
WORKLOAD = "workload"

#: The most CPU time (this process, setup and call) a test outside the marker may take before it fails as one that
#: should carry it: the quick tier's ~400 tests share about 40 s. CPU time, not wall time: a busy neighbour does not
#: move it. The environment variable, read when a session starts, overrides it (the guard's own test sets a small one).
QUICK_TEST_CPU_LIMIT_S = 10.0
CPU_LIMIT_ENV = "PYTEST_ACCEL_TESTS_CPU_LIMIT"

#: what pytest-xdist sets in a worker's environment
XDIST_WORKER_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")

#: plugins the pytest runs inside the tests go without; and their speed verdicts ignore other processes' CPU use,
#: since `pytest tests` runs on two xdist workers and each would see the other as a busy neighbour (the rule itself
#: is tested in test_disturbance)
INNER_RUN_ADDOPTS = "-p no:hypothesispytest -p no:anyio -o accel_busy_host_share=1"

_WORKLOAD_CACHE = pytest.StashKey[Path]()
_CPU_SECONDS = pytest.StashKey[float]()
_CPU_LIMIT = pytest.StashKey[float]()


#: pytest-xdist workers `pytest tests` starts when not told (-n): one per core, each loading torch, ONNX Runtime and
#: ultralytics, so at most this many
MAX_AUTO_WORKERS = 4
REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The plugin's tests spread over the machine's cores unless -n says otherwise (-n0: one process, as under a
    debugger). Set here, not in the ini's addopts, which would put the suites' timed tests beside each other too."""
    option = config.option
    if config.rootpath != REPOSITORY or hasattr(config, "workerinput"):
        return  # a pytester project importing this file's fixtures, or a worker
    if not hasattr(option, "numprocesses") or option.numprocesses is not None:
        return
    if config.getoption("usepdb", False) or config.getoption("collectonly", False):
        return
    option.numprocesses = "auto"
    option.maxprocesses = option.maxprocesses or MAX_AUTO_WORKERS


def pytest_configure(config: pytest.Config) -> None:
    _share_the_cores_between_workers(config)
    if config.rootpath == REPOSITORY:
        importlib.metadata.distributions = _distributions_read_once
    # read before any pytester moves HOME: every project of this session shares one cache of generated data sets,
    # exported and quantized models (each keyed by what it was made from, written atomically)
    config.stash[_WORKLOAD_CACHE] = cache_dir()
    config.stash[_CPU_LIMIT] = float(os.environ.get(CPU_LIMIT_ENV) or QUICK_TEST_CPU_LIMIT_S)
    # tests/fuzzing.py's thorough profile (20 000 fuzzed examples a test) is run by hand, not a tier; its name is
    # compared here rather than imported, so that loading this file imports no hypothesis
    if os.environ.get("HYPOTHESIS_PROFILE") == "thorough":
        config.stash[_CPU_LIMIT] = float("inf")


def _share_the_cores_between_workers(config: pytest.Config) -> None:
    """An xdist worker's OpenMP threads (PyTorch's intra-op pool, in this process and the pytest processes its tests
    start) are the cores divided by the workers, unless OMP_NUM_THREADS says otherwise: a pool a core per worker
    on each worker oversubscribes the machine, and the threads waiting for their turn spin on the cores the other
    worker needs (the quick tier took about 10% less CPU time with one thread a worker on 2 cores). Set before
    any test imports torch, which reads it once."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


class _ReadOnceDistribution(importlib.metadata.PathDistribution):
    """An installed distribution whose metadata, entry points and file list are parsed once, not at every read."""

    @functools.cached_property
    def metadata(self) -> importlib.metadata.PackageMetadata:
        return super().metadata

    @functools.cached_property
    def entry_points(self) -> importlib.metadata.EntryPoints:
        return super().entry_points

    @functools.cached_property
    def files(self) -> list[importlib.metadata.PackagePath] | None:
        return super().files


_ORIGINAL_DISTRIBUTIONS = importlib.metadata.distributions
_DISTRIBUTIONS_BY_FOLDER: dict[tuple[str, int], list[importlib.metadata.Distribution]] = {}


def _distributions_read_once(**kwargs: object) -> Iterator[importlib.metadata.Distribution]:
    """importlib.metadata.distributions() for this test process, each folder of sys.path read again only when its
    entries change (its mtime: a package installed or removed there).

    Every in-process pytest run scans every installed distribution, twice (its plugins' entry points, and their
    files to mark for assertion rewriting), as does the plugin for its backends' entry points: parsing the metadata
    of this environment's ~150 packages took about a tenth of the quick tier's CPU time, measured here."""
    if kwargs:
        return _ORIGINAL_DISTRIBUTIONS(**kwargs)
    found: list[importlib.metadata.Distribution] = []
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        try:
            key = (folder, os.stat(folder).st_mtime_ns)
        except OSError:
            continue
        if key not in _DISTRIBUTIONS_BY_FOLDER:
            _DISTRIBUTIONS_BY_FOLDER[key] = [
                _ReadOnceDistribution(distribution._path)
                if type(distribution) is importlib.metadata.PathDistribution else distribution
                for distribution in _ORIGINAL_DISTRIBUTIONS(path=[entry])
            ]
        found += _DISTRIBUTIONS_BY_FOLDER[key]
    return iter(found)


#: CPU seconds spent setting up session-scoped fixtures (the heavy stack's import): paid once per session, or once per
#: xdist worker, by whichever test comes first, so not charged to that test
_shared_setup_cpu = [0.0]


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object]) -> Generator[None, object, object]:
    start = time.process_time()
    try:
        return (yield)
    finally:
        if fixturedef.scope == "session":
            _shared_setup_cpu[0] += time.process_time() - start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    start, shared_before = time.process_time(), _shared_setup_cpu[0]
    try:
        return (yield)
    finally:
        item.stash[_CPU_SECONDS] = time.process_time() - start - (_shared_setup_cpu[0] - shared_before)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    start = time.process_time()
    try:
        return (yield)
    finally:
        item.stash[_CPU_SECONDS] = item.stash.get(_CPU_SECONDS, 0.0) + time.process_time() - start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                           pytest.TestReport]:
    report = yield
    if call.when == "call" and report.passed and item.get_closest_marker(WORKLOAD) is None:
        limit = item.config.stash[_CPU_LIMIT]
        seconds = item.stash.get(_CPU_SECONDS, 0.0)
        if seconds > limit:
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid} took {seconds:.1f} s of CPU time (setup and call), over the quick "
                               f"tier's {limit:g} s a test: mark it @pytest.mark.{WORKLOAD}, or make it cheaper")
    return report


def _load_kept_modules() -> list[str]:
    loaded = []
    for name in (*KEPT_LOADED, *KEPT_LOADED_LIGHT):
        try:
            if name == "ultralytics":
                from pytest_accel.workloads.detection.ultralytics_env import import_ultralytics

                import_ultralytics()  # offline, quiet: as the detection workload imports it
            else:
                importlib.import_module(name)
        except (ImportError, RuntimeError):
            continue
        loaded.append(name)
    return loaded


@pytest.fixture(scope="session")
def kept_loaded_modules() -> list[str]:
    """The heavy stack, imported once for the session (set up before any pytester, so its snapshots keep it).

    Its objects are then frozen out of the garbage collector's reach: every in-process pytest run ends with
    several full collections (pytest's unraisable-exception check), and walking torch's and ultralytics' millions
    of objects each time took about two thirds of a small run (0.45 s a run, 0.15 s frozen, measured here)."""
    loaded = _load_kept_modules()
    gc.collect()
    gc.freeze()
    return loaded


def _require_workload_marker(request: pytest.FixtureRequest, what: str) -> None:
    if request.node.get_closest_marker(WORKLOAD) is None:
        pytest.fail(f"{request.node.nodeid} {what} without @pytest.mark.{WORKLOAD}: mark it, so that the quick tier "
                    f'(-m "not {WORKLOAD}") stays quick', pytrace=False)


@pytest.fixture
def pytester(kept_loaded_modules: list[str], pytester: pytest.Pytester, request: pytest.FixtureRequest,
             monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester with the heavy stack loaded beforehand; a pytest run in a fresh process is for marked tests only."""
    if request.node.get_closest_marker(WORKLOAD) is None:
        def refused(*args: object, **kwargs: object) -> pytest.RunResult:
            _require_workload_marker(request, "runs pytest in a fresh process")
            raise AssertionError("unreachable")

        monkeypatch.setattr(pytester, "runpytest_subprocess", refused)
    # under `pytest tests -n 2` this process is an xdist worker; the runs inside a test are not, and pytest-benchmark
    # (among others) reads the worker's variables from the environment and would disable itself there
    for name in XDIST_WORKER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", INNER_RUN_ADDOPTS)  # pytester's own set-up removes it
    # no .pyc of a project's test files: pytest before 9.2 takes its assertion-rewritten .pyc for current when the
    # source's mtime (whole seconds) and size match, so a test that rewrites a file to the same length within a second
    # (0.95 -> 0.93) ran the old code under pytest 8.x; without a cache every run reads the source
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    return pytester


@pytest.fixture(scope="session")
def shared_workload_cache(pytestconfig: pytest.Config) -> Path:
    """The workloads' cache every test and pytester project of this session shares (for module-scoped fixtures;
    a test takes workload_cache)."""
    return pytestconfig.stash[_WORKLOAD_CACHE]


@pytest.fixture
def workload_cache(shared_workload_cache: Path, request: pytest.FixtureRequest,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The session's shared workload cache, also for pytest runs inside the test ($PYTEST_ACCEL_CACHE): a data set,
    an exported or a quantized model is made once, not once per pytester project."""
    _require_workload_marker(request, "uses the workloads' cache")
    monkeypatch.setenv(CACHE_ENV, str(shared_workload_cache))
    yield shared_workload_cache


@pytest.fixture
def suite_project(pytester: pytest.Pytester, workload_cache: Path) -> pytest.Pytester:
    """A pytester project that will hold copies of the repository's suites (see tests.helpers.copy_suites), its
    workloads' cache shared with the session's other projects."""
    return pytester


@pytest.fixture
def accuracy_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=ACCURACY_TEST)
    pytester.path.joinpath("value.txt").write_text("0.90")
    return pytester


#: The toy latency project's own clock and device. Its workloads advance the clock by exactly what they are asked to
#: take (with 2% of random jitter, as rounds differ), so the plugin's verdicts on them follow the injected
#: slowdowns and never how busy the machine running the tests is: a wall-clock spin beside a busy neighbour is
#: stretched by preemption, and its round-time spread rightly reads as a disturbed machine. The device has no
#: calibration probe (a probe's real work would take no time on this clock); the probe's part of the verdicts is
#: tested on synthetic rounds in test_compare, test_verdict_branches and test_history_verdicts, and on real rounds by
#: the suites' tests. pytest-benchmark keeps its own timer, so the rounds run in the plugin's local loop.
CLOCKED_CONFTEST = """
import random
import time

import pytest

from pytest_accel.devices import Backend, Device, DeviceInfo

_real_perf_counter = time.perf_counter
_now = [1000.0]
_jitter = random.Random()


def _virtual_perf_counter():
    return _now[0]


def _spin(seconds):
    _now[0] += seconds * (1 + 0.02 * (2 * _jitter.random() - 1))


@pytest.fixture
def spin():
    return _spin


def pytest_configure(config):
    time.perf_counter = _virtual_perf_counter


def pytest_unconfigure(config):
    time.perf_counter = _real_perf_counter


class SpinDevice(Device):
    runtime = "python"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="host", model="spin loop")

class SpinBackend(Backend):
    name = "spin"
    grammar = "spin"

    def parse(self, spec):
        return spec if spec == "spin" else None

    def discover(self):
        return ["spin"]

    def open(self, spec):
        return SpinDevice(spec, self.name)

def pytest_accel_register_backends(registry):
    registry.register(SpinBackend())
"""

CLOCKED_LATENCY_TEST = """
from pathlib import Path

def test_latency(accel, spin):
    delay = float(Path(__file__).with_name("delay.txt").read_text())
    accel.check(*accel.measure_latency("toy", lambda: spin(delay)).metrics())
"""


@pytest.fixture
def clocked_latency_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A toy latency test on the spin device and its own clock: 2 ms a call until delay.txt says otherwise."""
    pytester.makepyfile(test_toy=CLOCKED_LATENCY_TEST)
    pytester.makeconftest(CLOCKED_CONFTEST)
    pytester.makeini("[pytest]\naddopts = --device=spin --accel-profile=quick --benchmark-disable\n")
    pytester.path.joinpath("delay.txt").write_text("0.002")
    return pytester


@pytest.fixture
def latency_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The toy latency test on the CPU device with real timing (a wall-clock spin) and the calibration probe: for
    what is recorded and how, not for verdicts on slowdowns (those: clocked_latency_project)."""
    pytester.makepyfile(test_toy=LATENCY_TEST)
    pytester.path.joinpath("delay.txt").write_text("0.002")
    return pytester


@pytest.fixture(autouse=True)
def _inner_runs_without_unused_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pytest run inside a test (in process, in a fresh one, an xdist worker, the console script's re-runs) uses
    hypothesis' or anyio's pytest plugins; hypothesis' alone costs each fresh process about 1.8 s of imports."""
    monkeypatch.setenv("PYTEST_ADDOPTS", INNER_RUN_ADDOPTS)


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not append to this project's own CI page when its tests run under GitHub Actions."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
