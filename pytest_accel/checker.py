"""The ``accel`` fixture: measure on the test's device and check metrics against that device's baselines."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

from pytest_accel.baselines import (
    BOUND_KINDS,
    BaselineError,
    Verdict,
    atomic_write_json,
    compare,
    describe_verdict,
    metric_record,
    safe_name,
)
from pytest_accel.devices import Device
from pytest_accel.metrics import METRIC_KINDS, Metric, format_value
from pytest_accel.options import (
    DEFAULT_TOLERANCES,
    INI_TOLERANCE_PREFIX,
    OPT_BASELINE_DIR,
    OPT_MISSING,
    OPT_TOLERANCE,
    OPT_UPDATE,
    OptionError,
    check_tolerance_key,
    parse_tolerance_value,
)
from pytest_accel.session import AccelSession, TestRecord, WrittenBaseline
from pytest_accel.timing import PROFILES, LatencyMeasurement, Profile, default_profile_for, measure_latency

MARKER_TOLERANCE = "accel_tolerance"
MARKER_ONLY = "accel_only"


def suite_and_test_names(item: pytest.Item, device: Device) -> tuple[str, str]:
    """('matmul', 'test_latency-fp16') for suites/test_matmul.py::test_latency[fp16-cpu]: the device stays out."""
    suite = item.path.stem.removeprefix("test_") if item.path else "suite"
    name = getattr(item, "originalname", item.name)
    cls = getattr(item, "cls", None)
    if cls is not None:
        name = f"{cls.__name__}.{name}"
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        params_id, device_id = callspec.id, device.id
        if params_id == device_id:
            params_id = ""
        elif params_id.endswith(f"-{device_id}"):
            params_id = params_id[: -len(device_id) - 1]
        elif params_id.startswith(f"{device_id}-"):
            params_id = params_id[len(device_id) + 1 :]
        if params_id:
            name = f"{name}-{params_id}"
    return suite, name


def marker_tolerances(item: pytest.Item) -> dict[str, float]:
    """Tolerances from ``accel_tolerance`` markers, the closest marker winning; validated."""
    merged: dict[str, float] = {}
    for marker in reversed(list(item.iter_markers(MARKER_TOLERANCE))):
        source = f"@pytest.mark.{MARKER_TOLERANCE} on {item.nodeid}"
        given: dict[str, Any] = {}
        for arg in marker.args:
            if not isinstance(arg, Mapping):
                raise OptionError(f"{source}: positional argument {arg!r} must be a dict of metric name -> tolerance")
            given.update(arg)
        given.update(marker.kwargs)
        for key, value in given.items():
            merged[check_tolerance_key(source, str(key))] = parse_tolerance_value(source, str(key), value)
    return merged


class AccelChecker:
    """Bound to one test on one device. ``measure_latency`` times; ``check`` compares and records."""

    def __init__(self, session: AccelSession, item: pytest.Item, device: Device, request: pytest.FixtureRequest):
        self.session = session
        self.item = item
        self.device = device
        self._request = request
        self._benchmark_used = False
        self.suite, self.test_name = suite_and_test_names(item, device)
        self._base_test_name = self.test_name
        self.baseline_path = session.store.path_for(device.key, self.suite, self.test_name)
        self._marker_tolerances = marker_tolerances(item)
        self.record = TestRecord(item.nodeid, device, self.suite, self.test_name, self.baseline_path)
        session.records.append(self.record)

    def set_variant(self, variant: str | None) -> None:
        """Keep this test's baselines apart for a non-default input (another model, data set or image size):
        ``<test>@<variant>.json``. Call before measuring; None restores the default file."""
        name = f"{self._base_test_name}@{variant}" if variant else self._base_test_name
        self.test_name = name
        self.baseline_path = self.session.store.path_for(self.device.key, self.suite, name)
        self.record.test = name
        self.record.baseline_path = self.baseline_path

    @property
    def profile(self) -> Profile:
        name = self.session.options.profile
        return PROFILES[name] if name else default_profile_for(self.device)

    def _benchmark(self) -> Any | None:
        """pytest-benchmark's fixture, once per test (it allows one use); later measurements time locally."""
        config = self.session.config
        if self._benchmark_used or not config.pluginmanager.hasplugin("benchmark"):
            return None
        if config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False):
            return None
        self._benchmark_used = True
        benchmark = self._request.getfixturevalue("benchmark")
        if getattr(benchmark, "enabled", False):
            return benchmark
        benchmark.skipped = True  # disabled by pytest-benchmark itself (xdist): not "unused", we time locally
        return None

    def measure_latency(self, name: str, fn: Callable[[], object], *, batch_size: int = 1) -> LatencyMeasurement:
        """Time ``fn`` (one inference/step on this device) per the profile; see :func:`timing.measure_latency`."""
        return measure_latency(name, fn, self.device, self.profile, batch_size=batch_size, benchmark=self._benchmark())

    # --- tolerances -------------------------------------------------------------------------------------------

    def tolerance_for(self, metric: Metric) -> tuple[float | None, str]:
        """marker > CLI > ini > default; at each level a full metric name beats its kind."""
        options = self.session.options
        levels: list[tuple[Mapping[str, float], str]] = [
            (self._marker_tolerances, f"marker {MARKER_TOLERANCE}"),
            (options.cli_tolerances, OPT_TOLERANCE),
            (options.ini_tolerances, f"ini {INI_TOLERANCE_PREFIX}{metric.kind}"),
        ]
        for values, source in levels:
            for key in (metric.name, metric.kind):
                if key in values:
                    return values[key], source
        if metric.kind in BOUND_KINDS:
            return metric.limit, "the metric's limit"
        return DEFAULT_TOLERANCES.get(metric.kind), "default"

    # --- checking ---------------------------------------------------------------------------------------------

    def check(self, *metrics: Metric) -> list[Verdict]:
        """Compare ``metrics`` with this test's baseline file, record the verdicts, write baselines as the options
        say, and fail the test (once, listing every failing metric) when a gated check fails."""
        options = self.session.options
        names = [m.name for m in metrics]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"metric names must be unique within a test; repeated: {', '.join(sorted(duplicates))}")
        try:
            stored = self.session.store.load(self.baseline_path)
        except BaselineError as error:
            if not options.update_baselines:
                pytest.fail(f"pytest-accel: {error}", pytrace=False)
            stored = None  # the flag that says "overwrite" was given
        stored_metrics: dict[str, Any] = stored["metrics"] if stored else {}

        verdicts: list[Verdict] = []
        for metric in metrics:
            tolerance, source = self.tolerance_for(metric)
            against = stored_metrics.get(metric.name)
            if metric.expected is not None:
                against = {"value": metric.expected, "unit": metric.unit}
            verdict = compare(
                metric,
                against,
                tolerance,
                source,
                alpha=options.alpha,
                latency_basis=options.latency_basis,
            )
            verdict.gated = metric.kind in options.gate
            verdicts.append(verdict)

        to_write: dict[str, dict[str, Any]] = {}
        for verdict in verdicts:
            metric = verdict.metric
            if options.update_baselines:
                to_write[metric.name] = metric_record(metric, verdict.tolerance)
                # bounds and device-independent references are not baselines: updating cannot settle them
                if verdict.status != "info" and metric.kind not in BOUND_KINDS and metric.expected is None:
                    verdict.status = "updated"
            elif verdict.status == "missing" and options.missing_baseline == "record":
                to_write[metric.name] = metric_record(metric, verdict.tolerance)
                verdict.status = "recorded"
        if to_write:
            self._write(stored, to_write)
        self.record.verdicts.extend(verdicts)

        failures = [v for v in verdicts if v.fails_test]
        missing = [v for v in verdicts if v.status == "missing"]
        if failures or (missing and options.missing_baseline == "fail"):
            pytest.fail(self._failure_message(failures, missing if options.missing_baseline == "fail" else []),
                        pytrace=False)
        return verdicts

    def _write(self, stored: dict[str, Any] | None, records: dict[str, dict[str, Any]]) -> None:
        changes = []
        old = stored["metrics"] if stored else {}
        for name, record in records.items():
            before = old.get(name)
            was = format_value(before["value"], before["unit"]) if before else "none"
            changes.append(f"{name}: {was} -> {format_value(record['value'], record['unit'])}")
        action = "updated" if stored else "created"
        try:
            self.session.store.write(self.baseline_path, records, self.session.header(self.device), stored)
        except OSError as error:
            pytest.fail(f"pytest-accel: cannot write baseline {self.baseline_path}: {error}", pytrace=False)
        self.session.written.append(WrittenBaseline(self.baseline_path, action, changes))

    def _obtained_path(self) -> Path | None:
        cache = getattr(self.session.config, "cache", None)
        if cache is None:
            return None
        folder = cache.mkdir("accel-obtained")
        return folder / safe_name(self.device.key) / safe_name(self.suite) / f"{safe_name(self.test_name)}.json"

    def _failure_message(self, failures: list[Verdict], missing: list[Verdict]) -> str:
        lines = [
            f"pytest-accel: {len(failures) + len(missing)} check(s) failed on {self.device.spec} ({self.device.key})"
        ]
        for verdict in failures:
            lines.append("  " + describe_verdict(verdict))
        for verdict in missing:
            lines.append(f"  {verdict.metric.name} [{verdict.metric.kind}]: no baseline ({OPT_MISSING}=fail)")
        obtained = self._obtained_path()
        if obtained is not None:
            document = {
                "device_key": self.device.key,
                "metrics": {v.metric.name: metric_record(v.metric, v.tolerance) for v in self.record.verdicts},
            }
            atomic_write_json(obtained, document)
        lines.append(f"  baseline: {self._display(self.baseline_path)}")
        if obtained is not None:
            lines.append(f"  obtained: {self._display(obtained)}")
        if any(v.metric.kind not in BOUND_KINDS and v.metric.expected is None for v in failures + missing):
            lines.append(f"  update:   {self.update_command()}")
        else:
            lines.append("  (bounds and references are not baselines: an update would not settle this)")
        return "\n".join(lines)

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path(self.session.config.invocation_params.dir)))
        except ValueError:
            return str(path)

    def update_command(self) -> str:
        args = ["pytest", self.item.nodeid, f"--device={self.device.spec}", OPT_UPDATE]
        if self.session.config.getoption(OPT_BASELINE_DIR):
            args.append(f"{OPT_BASELINE_DIR}={self.session.config.getoption(OPT_BASELINE_DIR)}")
        return shlex.join(args)


__all__ = ["AccelChecker", "MARKER_ONLY", "MARKER_TOLERANCE", "METRIC_KINDS"]
