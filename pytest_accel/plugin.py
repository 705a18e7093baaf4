"""pytest entry point (``-p pytest_accel.plugin``, auto-loaded as ``accel``): hooks, fixtures and markers only.

Everything is delegated; nothing here imports torch, onnxruntime or ultralytics.
"""

from __future__ import annotations

import fnmatch
import sys
import warnings
from dataclasses import replace
from importlib import metadata
from typing import Any, Generator, Iterator

import pytest

from pytest_accel import hookspecs
from pytest_accel.baselines import BaselineError
from pytest_accel.checker import AccelChecker
from pytest_accel.devices import Backend, BackendRegistry, Device
from pytest_accel.disturbance import HostLoad
from pytest_accel.environment import cache_dir
from pytest_accel.errors import DeviceFailure, OptionError, WorkloadUnsupported
from pytest_accel.executors import TestExecutors, keep_benchmark_storage_out_of_the_project
from pytest_accel.identity import item_identity, test_location
from pytest_accel.manifest import ManifestPlugin, load_manifests
from pytest_accel.metrics import METRIC_KINDS
from pytest_accel.option_readers import read_options
from pytest_accel.options import OPT_ACCEL_DEVICE, OPT_DEVICE, OWNS_SHORT_DEVICE, add_options, add_short_device_option
from pytest_accel.paths import display_path
from pytest_accel.peers import summary_lines as peer_summary_lines
from pytest_accel.progress import NULL_PROGRESS, SESSION_INTERVAL, LineProgress, Progress
from pytest_accel.references import ReferenceStore
from pytest_accel.report.extras import PytestHtmlCharts, charts_wanted
from pytest_accel.report.facts import RunFacts
from pytest_accel.report.json_report import build_report, write_report
from pytest_accel.report.lines import Line
from pytest_accel.report.markdown import STEP_SUMMARY_ENV, MarkdownSummary, append_step_summary, step_summary_path
from pytest_accel.report.matrix import marks_encodable
from pytest_accel.report.safe_text import terminal_text
from pytest_accel.report.scorecard import ScorecardCollector, build_scorecards, write_scorecards
from pytest_accel.report.terminal import TerminalSummary
from pytest_accel.session import HOST_LOAD_KEY, SESSION_KEY, AccelSession
from pytest_accel.tolerances import MARKER_TOLERANCE
from pytest_accel.turns import join_from_environment as join_turns_from_environment
from pytest_accel.workers import (
    WORKER_OUTPUT_KEY,
    device_turns_summary,
    dump,
    is_worker,
    merge,
    schedule_one_worker_per_device,
    start_device_turns,
)

ENTRY_POINT_GROUP = "pytest_accel.backends"
SCORECARD_KEY = pytest.StashKey[ScorecardCollector]()
#: what every report of the run shares, worked out once at its end (on xdist's controller)
FACTS_KEY = pytest.StashKey[RunFacts]()
MARKER_ONLY = "accel_only"

MARKERS = (
    f"{MARKER_ONLY}(*patterns): run this test only on devices whose spec, key or backend name matches one of the "
    "glob patterns (e.g. 'cuda*', 'ort:*', 'onnxruntime'); other devices skip it with the reason.",
    f"{MARKER_TOLERANCE}(mapping=None, **kinds): tolerances for this test, by metric kind "
    f"({', '.join(METRIC_KINDS)}) or, in the mapping, by full metric name; they win over "
    "--accel-tolerance, ini and defaults.",
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Generator[None, None, None]:
    """``--device`` becomes ours only after the initial conftests had their say: a project whose conftest defines
    its own ``--device`` (Triton's, pytest-playwright's suites) keeps it, and pytest-accel's devices are given
    with ``--accel-device`` there."""
    result = yield
    early_config.stash[OWNS_SHORT_DEVICE] = add_short_device_option(parser)
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_accel_register_backends(registry: BackendRegistry) -> None:
    """The built-in backends, through the same hook third parties use (tryfirst: plugins may override them)."""
    from pytest_accel.devices.onnxruntime import OrtBackend
    from pytest_accel.devices.torch import TorchBackend
    from pytest_accel.devices.xla import XlaBackend

    registry.register(TorchBackend())
    registry.register(OrtBackend())
    registry.register(XlaBackend())


def register_entry_point_backends(registry: BackendRegistry) -> None:
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {entry_point.name} = {entry_point.value} (group {ENTRY_POINT_GROUP})"
        try:
            loaded = entry_point.load()
            if isinstance(loaded, type) and issubclass(loaded, Backend):
                registry.register(loaded())
            elif isinstance(loaded, Backend):
                registry.register(loaded)
            elif callable(loaded):
                loaded(registry)
            else:
                raise TypeError(f"it is a {type(loaded).__name__}, not a Backend class, instance or callable")
        except Exception as error:  # noqa: BLE001 - a broken third-party plugin must not look like our bug
            raise pytest.UsageError(f"pytest-accel: {where} failed to load: {error}") from None


def pytest_configure(config: pytest.Config) -> None:
    if not is_worker(config):
        join_turns_from_environment()  # a run of pytest-accel ab: wait for the first turn (see pytest_accel.turns)
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    keep_benchmark_storage_out_of_the_project(config, cache_dir())
    try:
        options = read_options(config)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None
    if options.inject_slowdown:
        from pytest_accel.gatecheck import SlowdownInjector

        config.pluginmanager.register(SlowdownInjector(options.inject_slowdown), "accel-inject-slowdown")
    registry = BackendRegistry()
    config.hook.pytest_accel_register_backends(registry=registry)
    register_entry_point_backends(registry)
    manifests = ManifestPlugin(load_manifests(options.manifest_paths, registry))
    config.pluginmanager.register(manifests, "accel-manifests")
    session = AccelSession(config, options, registry, manifests)
    if options.scorecard_dir is not None:
        collector = ScorecardCollector(options.scorecard_dir)
        config.pluginmanager.register(collector, "accel-scorecards")
        config.stash[SCORECARD_KEY] = collector
    config.stash[SESSION_KEY] = session
    schedule_one_worker_per_device(config, lambda: [device.id for device in session.devices()])
    start_device_turns(config)
    if charts_wanted(config):
        config.pluginmanager.register(PytestHtmlCharts(), "accel-pytest-html-charts")
    if options.explicit_devices:
        session.devices()  # resolve now: a bad --device stops the run before collection


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """pytest-benchmark's own statistics table repeats, without verdicts and 450 characters wide, what the summary
    shows: hidden unless asked for (pytest-benchmark keeps measuring, and its --benchmark-json keeps every round)."""
    accel = session.config.stash.get(SESSION_KEY, None)
    benchmark = getattr(session.config, "_benchmarksession", None)  # pytest-benchmark's session object
    if accel is not None and benchmark is not None and not accel.options.benchmark_table:
        benchmark.quiet = True


@pytest.hookimpl(wrapper=True)
def pytest_report_header(config: pytest.Config) -> Generator[None, list[Any], list[Any]]:
    """Ours (printed first: pytest prints the hook's results last to first), and the other plugins' less
    pytest-benchmark's (one 170-character line of its defaults) while its table is hidden."""
    lines = yield
    session = config.stash.get(SESSION_KEY, None)
    if session is not None and not session.options.benchmark_table:
        lines = [entry for entry in lines if not (isinstance(entry, str) and entry.startswith("benchmark: "))]
    return [*lines, [terminal_text(line) for line in _header_lines(config)]]


def _header_lines(config: pytest.Config) -> list[str]:
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return []
    options = session.options
    lines = []
    if options.device_option != OPT_DEVICE:
        lines.append(f"accel: {OPT_DEVICE} belongs to another plugin or conftest here; give pytest-accel's devices "
                     f"with {OPT_ACCEL_DEVICE}")
    lines += [
        f"accel: baselines {options.baseline_dir}",
        f"accel: gate {','.join(sorted(options.gate)) or 'none'}, missing baseline: {options.missing_baseline}, "
        f"profile {options.profile or 'per device'}",
    ]
    if not session.devices_resolved:
        lines.append(f"accel: no {options.device_option} given; tests that take `device` run on cpu")
        return lines
    for device in session.devices():
        if device.available:
            lines.append(f"accel device {device.spec}: {device.key} ({device.info.describe()})")
            if device.fp32_math == "tf32":
                reason = device.info.extra.get("fp32_math_reason", "the runtime's default")
                lines.append(f"accel device {device.spec}: fp32 runs as TF32 ({reason}); fp32 parity is held to "
                             "TF32 bounds")
        else:
            lines.append(f"accel device {device.spec}: unavailable, its tests skip ({device.unavailable_reason})")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" not in metafunc.fixturenames or not _uses_our_device_fixture(metafunc):
        return
    devices = metafunc.config.stash[SESSION_KEY].devices()
    metafunc.parametrize("device", devices, ids=[d.id for d in devices], indirect=True, scope="session")


def _uses_our_device_fixture(metafunc: pytest.Metafunc) -> bool:
    """Whether the ``device`` this test gets is pytest-accel's, not a fixture of the same name that a project
    defines for itself (that test is left alone, never parametrised over accelerators)."""
    definitions = metafunc.definition._fixtureinfo.name2fixturedefs.get("device") or ()  # no public accessor
    if not definitions:
        return False
    func = definitions[-1].func  # the definition closest to the test wins
    return getattr(func, "__module__", None) == __name__ and getattr(func, "__name__", None) == "device"


def _matches(device: Device, patterns: tuple[Any, ...]) -> bool:
    names = (device.spec, device.key, device.backend_name, device.runtime)
    return any(fnmatch.fnmatchcase(name, str(pattern)) for pattern in patterns for name in names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        device = callspec.params.get("device") if callspec is not None else None
        if not isinstance(device, Device):
            continue
        for marker in item.iter_markers(MARKER_ONLY):
            if not marker.args:
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{MARKER_ONLY}() needs at least one pattern")
            if not _matches(device, marker.args):
                wanted = ", ".join(map(str, marker.args))
                item.add_marker(pytest.mark.skip(reason=f"{MARKER_ONLY}({wanted}): not for {device.spec}"))
        if device.available:
            config.stash[SESSION_KEY].manifests.apply(item, device.backend_name, (device.spec, device.key))
            collector = config.stash.get(SCORECARD_KEY, None)
            if collector is not None:
                identity = item_identity(item, device)
                collector.place(item, device.spec, identity.suite, identity.function, identity.params)


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> Device:
    """The device under test; tests taking it run once per ``--device``."""
    if not hasattr(request, "param"):
        raise pytest.UsageError("the `device` fixture must be requested as a test argument to be parametrized")
    selected: Device = request.param
    if not selected.available:
        pytest.skip(f"{selected.spec} is not available: {selected.unavailable_reason}")
    return selected


@pytest.fixture
def accel_variant() -> str | None:
    """Names a non-default input (another model, data set or size) whose baselines must stay apart from the
    defaults': ``<test>@<variant>`` (file ``<test>_<variant>.json``). None here; a suite overrides this fixture."""
    return None


@pytest.fixture
def accel(request: pytest.FixtureRequest, device: Device, accel_variant: str | None) -> Iterator[AccelChecker]:
    """Measure on the test's device and check metrics against its baselines: ``accel.check(*metrics)``."""
    session = request.config.stash[SESSION_KEY]
    executors = TestExecutors(request, session.options.use_pytest_benchmark)
    try:
        checker = AccelChecker(session, request.node, device, executors, accel_variant)
    except (OptionError, pytest.UsageError) as error:  # a malformed accel_tolerance marker: name it, no traceback
        pytest.fail(f"pytest-accel: {error}", pytrace=False)
    yield checker
    checker.finish()


def terminal_progress(config: pytest.Config) -> Progress:
    """Progress lines through pytest's terminal reporter, never into a test's captured output; none under ``-q``,
    without a terminal reporter, and on xdist workers (whose output no one reads while they run)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0 or is_worker(config):
        return NULL_PROGRESS
    capture = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        if capture is None:
            reporter.write_line(line)
            return
        # what pytest's live logging does: the line goes to the terminal past global and fixture capture
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return LineProgress(write, SESSION_INTERVAL)


@pytest.fixture(scope="session")
def accel_progress(pytestconfig: pytest.Config) -> Progress:
    """Where long preparation inside the run (a suite building its data set) tells its progress: pytest's
    terminal, not the test's captured output; silent under ``-q``. Pass it to the workload."""
    return terminal_progress(pytestconfig)


@pytest.fixture(scope="session")
def accel_references(request: pytest.FixtureRequest) -> ReferenceStore:
    """The device-independent references in ``<baselines>/reference/``: ``find(suite, name, identity)`` gives
    the reference recorded for exactly these inputs, or None. A damaged file fails the tests that use it."""
    return request.config.stash[SESSION_KEY].references


def _as_test_outcomes() -> Generator[None, None, None]:
    """Around a test phase: what workloads and devices raise becomes the outcome it means, without a traceback —
    a skip with the reason (WorkloadUnsupported) or a one-line failure (DeviceFailure, BaselineError)."""
    try:
        return (yield)
    except WorkloadUnsupported as reason:
        raise pytest.skip.Exception(str(reason), _use_item_location=True) from None
    except (DeviceFailure, BaselineError) as error:
        raise pytest.fail.Exception(f"pytest-accel: {error}", pytrace=False) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if "accel" in getattr(item, "fixturenames", ()):
        item.stash[HOST_LOAD_KEY] = HostLoad()  # from here to its checks: did other processes have the CPUs?
    return (yield from _as_test_outcomes())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _as_test_outcomes())


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test that runs on a device, before any selection: its baselines are never pruned."""
    callspec = getattr(item, "callspec", None)
    device = callspec.params.get("device") if callspec is not None else None
    session = item.config.stash.get(SESSION_KEY, None)
    if isinstance(device, Device) and session is not None:
        session.collected_functions.add((test_location(item), item_identity(item, device).function))


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        session = item.config.stash.get(SESSION_KEY, None)
        if session is not None:
            session.deselected_locations.add(test_location(item))


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """pytest-benchmark's JSON: the devices under test, with their keys and facts, beside its host facts."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None or not session.devices_resolved:
        return
    machine_info["accel_devices"] = {
        device.spec: {"key": device.key, **device.info.to_dict()} for device in session.devices() if device.available
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist, on the controller: a worker is done; merge what it measured and wrote."""
    session = node.config.stash.get(SESSION_KEY, None)
    output = getattr(node, "workeroutput", None) or {}
    if session is not None and WORKER_OUTPUT_KEY in output:
        merge(session, output[WORKER_OUTPUT_KEY])


@pytest.hookimpl(tryfirst=True)  # on an xdist worker, before xdist sends workeroutput to the controller
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    accel_session = session.config.stash.get(SESSION_KEY, None)
    if accel_session is None:
        return
    if is_worker(session.config):  # xdist: the controller merges, summarises and writes the report
        vars(session.config)["workeroutput"][WORKER_OUTPUT_KEY] = dump(accel_session)  # set by xdist, untyped
        return
    facts = RunFacts.of(accel_session)
    if accel_session.options.prune_baselines and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        accel_session.prune_unused_baselines(facts.unused_baselines)
        facts = replace(facts, unused_baselines=replace(facts.unused_baselines, deletable=()))
    session.config.stash[FACTS_KEY] = facts
    if facts.peer_failures(accel_session.options.gate) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a device off its peers: shown in the summary
    collector = session.config.stash.get(SCORECARD_KEY, None)
    if collector is not None:
        accel_session.scorecards = write_scorecards(collector.folder,
                                                    build_scorecards(accel_session, collector, facts))
    step_summary = step_summary_path()
    if step_summary is not None:
        problem = append_step_summary(step_summary, MarkdownSummary(accel_session, facts, session.config.rootpath))
        if problem is not None:
            warnings.warn(pytest.PytestWarning(
                f"pytest-accel: cannot append the Markdown summary to {STEP_SUMMARY_ENV}={step_summary}: {problem}"),
                stacklevel=1)
    options = accel_session.options
    if options.report_path is None and options.html_path is None:
        return
    report = build_report(accel_session, int(exitstatus), facts)
    session.config.hook.pytest_accel_update_report(config=session.config, report=report)
    if options.report_path is not None:
        write_report(options.report_path, report)
    if options.html_path is not None:
        from pytest_accel.baselines import json_safe
        from pytest_accel.report.html import write_html

        write_html(options.html_path, json_safe(report))  # what the saved JSON holds, so both pages are one


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    writer = config.get_terminal_writer()
    # pytest's writer keeps its stream private; the stream's encoding decides whether the marks can be written
    stream = getattr(writer, "_file", None) or sys.stdout
    facts = config.stash.get(FACTS_KEY, None) or RunFacts.of(session)
    summary = TerminalSummary(session, facts, unicode=marks_encodable(getattr(stream, "encoding", None)),
                              width=writer.fullwidth)
    lines = list(summary.lines())
    peer_gate = session.options.gate
    lines += [Line.of(text, {"red": True, "bold": True} if "FAILED" in text.split()[:1] else {})
              for text in peer_summary_lines(facts.peers, peer_gate, every_group=session.options.summary == "full")]
    lines += [Line.of(text, markup) for text, markup in session.manifests.summary_lines()]
    lines += [Line.of(text) for text in device_turns_summary(config)]
    if session.scorecards:
        where = session.options.invocation_dir
        shown = ", ".join(display_path(p, where) for p in session.scorecards if p.suffix == ".md")
        lines.append(Line.of(f"scorecards: {shown} (and .json beside each)"))
    if session.options.report_path is not None:
        lines.append(Line.of(f"JSON report: {session.options.report_path}"))
    if session.options.html_path is not None:
        lines.append(Line.of(f"HTML report: {session.options.html_path}"))
    if not lines:
        return
    terminalreporter.write_sep("=", "pytest-accel")
    for line in lines:
        terminalreporter.ensure_newline()
        for text, markup in line.parts:
            terminalreporter.write(terminal_text(text), **markup)
        terminalreporter.line("")
