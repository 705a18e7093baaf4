"""The ``accel`` fixture's object: measure on the test's device and check metrics against that device's baselines.

One life cycle for every check: load the test's baseline file, resolve each metric's tolerance, let
:func:`~pytest_accel.verdicts.compare` make the final verdicts under the run's policy, write what they say to write,
record them for the reports, and fail the test once, listing every failing metric.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

from pytest_accel.baselines import BaselineError, atomic_write_json, baseline_path, json_safe
from pytest_accel.datasheet.measured import value_metrics
from pytest_accel.datasheet.peaks import DevicePeak
from pytest_accel.devices import Device
from pytest_accel.errors import OptionError
from pytest_accel.executors import TestExecutors
from pytest_accel.identity import item_identity, test_location
from pytest_accel.manifest import Manifest
from pytest_accel.metrics import Metric, format_value
from pytest_accel.options import OPT_MISSING, OPT_UPDATE
from pytest_accel.paths import display_path
from pytest_accel.records import baseline_record
from pytest_accel.report.document import ReportedMetric
from pytest_accel.report.junit import junit_properties
from pytest_accel.report.safe_text import terminal_text
from pytest_accel.rerun import CONFIRMING_ENV, rerun_command, run_in_fresh_process
from pytest_accel.session import HOST_LOAD_KEY, RECORD_KEY, AccelSession, TestRecord, WrittenBaseline
from pytest_accel.timing import (
    PROFILES,
    LatencyMeasurement,
    Profile,
    default_profile_for,
    measure_latency,
    probe_burst,
)
from pytest_accel.tolerances import marker_tolerances, resolve_tolerance
from pytest_accel.verdicts import Policy, Verdict, compare, describe_verdict


class AccelChecker:
    """Bound to one test on one device. ``measure_latency`` times; ``check`` compares and records.

    ``variant`` (from the ``accel_variant`` fixture) keeps the baselines of a non-default input apart:
    ``<test>@<variant>`` (file ``<test>_<variant>.json``).
    """

    def __init__(
        self,
        session: AccelSession,
        item: pytest.Item,
        device: Device,
        executors: TestExecutors,
        variant: str | None = None,
    ) -> None:
        self.session = session
        self.item = item
        self.device = device
        self._executors = executors
        #: how to measure each named measurement again, to confirm a regression before failing
        self._remeasure: dict[str, Callable[[], LatencyMeasurement]] = {}
        self._remeasured: dict[str, LatencyMeasurement] = {}
        #: metrics of this test run again in a fresh process, by name (None until that run is made)
        self._fresh_run: dict[str, ReportedMetric] | None = None
        #: the share of the host's CPU time other processes used during this test, as of its last check
        self._others_share: float | None = None
        identity = item_identity(item, device)
        self.suite = identity.suite
        self.test_name = f"{identity.name}@{variant}" if variant else identity.name
        self.location = test_location(item)
        self.baseline_path = session.store.path_for(device.key, self.location, self.test_name)
        session.claim_baseline_file(self.baseline_path, item.nodeid, device.spec)
        self._marker_tolerances = marker_tolerances(item)
        self.record = TestRecord(item.nodeid, device, self.suite, self.test_name, self.baseline_path, self.location,
                                 function=identity.function, params=identity.params, variant=variant or "")
        session.records.append(self.record)
        item.stash[RECORD_KEY] = self.record

    @property
    def profile(self) -> Profile:
        name = self.session.options.profile
        return PROFILES[name] if name else default_profile_for(self.device)

    @property
    def manifest(self) -> Manifest | None:
        """The manifest that speaks for this test's device (its backend's own, or one given by option or ini), for
        what a suite holds a device to beyond tolerances (``min_delegation``); None without one."""
        return self.session.manifest_for(self.device)

    @property
    def peak(self) -> DevicePeak:
        """What this test's device's datasheet promises (or the host CPU's estimate, or none and why)."""
        return self.session.peak_for(self.device)

    def value_metrics(self, name: str, items_per_s: float) -> list[Metric]:
        """Work per joule (TDP estimate, where no meter) and per dollar of a throughput: reported, never gated."""
        return value_metrics(name, items_per_s, self.peak, hourly_price_usd=self.session.options.hourly_price_usd,
                             has_energy_meter=self.device.energy_meter() is not None)

    def measure_latency(self, name: str, fn: Callable[[], object], *, batch_size: int = 1) -> LatencyMeasurement:
        """Time ``fn`` (one inference/step on this device) per the profile; see :func:`timing.measure_latency`."""
        self._remeasure[name] = lambda: measure_latency(name, fn, self.device, self.profile, batch_size=batch_size)
        return measure_latency(
            name, fn, self.device, self.profile, batch_size=batch_size, executor=self._executors.next()
        )

    def tolerance_for(self, metric: Metric) -> tuple[float | None, str]:
        """marker > CLI > the device's manifest > ini > default; at each level a full metric name beats its kind."""
        options = self.session.options
        manifest, source = self.session.manifest_tolerances(self.device)
        return resolve_tolerance(metric, self._marker_tolerances, options.cli_tolerances, options.ini_tolerances,
                                 manifest, source)

    def check(self, *metrics: Metric) -> list[Verdict]:
        """Compare ``metrics`` with this test's baseline file, record the verdicts, write baselines as the options
        say, and fail the test (once, listing every failing metric) when a gated check fails."""
        options = self.session.options
        names = [m.name for m in metrics]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"metric names must be unique within a test; repeated: {', '.join(sorted(duplicates))}")
        stored, unusable = self._load()
        if unusable and not options.update_baselines:  # else the flag that says "overwrite" was given
            pytest.fail(f"pytest-accel: {unusable}", pytrace=False)
        stored_metrics: dict[str, Any] = stored["metrics"] if stored else {}
        if not options.update_baselines:
            self._check_stored_identity(metrics, stored_metrics)

        policy = replace(options.policy, family_size=self.session.speed_family_size())
        self._witness_the_machine(metrics)
        load = self.item.stash.get(HOST_LOAD_KEY, None)
        self._others_share = load.others_share() if load is not None else None
        verdicts = self._judge(metrics, stored_metrics, policy)
        invalid = [v for v in verdicts if v.regressed and v.metric.basis in ("bound", "reference")]
        if invalid and (policy.update or policy.record_missing):
            # a run that fails a bound or a reference is not a valid run: its measurements become no baseline
            # (MLPerf counts performance only alongside a valid accuracy run), so judge it as a plain run
            verdicts = self._judge(metrics, stored_metrics, replace(policy, update=False, record_missing=False))
        to_write = [v for v in verdicts if v.writes_baseline]
        if to_write:
            self._write(to_write)
        self.record.verdicts.extend(verdicts)
        self.record.stored_names.update(stored_metrics)
        self.item.user_properties.extend(junit_properties(self.device, verdicts,
                                                          first=len(self.record.verdicts) == len(verdicts)))

        failures = [v for v in verdicts if v.fails_test]
        missing = [v for v in verdicts if v.status == "missing"] if options.missing_baseline == "fail" else []
        if failures or missing:
            message = self._failure_message(failures, missing)
            if invalid and options.writes_baselines:
                message += "\n  (no baseline written: a failing bound or reference check invalidates this run)"
            pytest.fail(message, pytrace=False)
        return verdicts

    def _witness_the_machine(self, metrics: tuple[Metric, ...]) -> None:
        """A metric that a busy machine moves (a first inference, a time to accuracy) and that was measured without
        the calibration probe gets a short burst of it now, right after its measurement: the evidence that tells a
        disturbed machine from a slower workload (:mod:`pytest_accel.disturbance`)."""
        if not any(m.kind_info.disturbed_by_load and not m.probe_samples for m in metrics):
            return
        burst = probe_burst(self.device)
        for metric in metrics:
            if metric.kind_info.disturbed_by_load and not metric.probe_samples and burst:
                metric.probe_samples = list(burst)

    def _device_probes(self) -> tuple[float, ...]:
        return self.session.device_probes(self.device.key)

    def _load(self) -> tuple[dict[str, Any] | None, str]:
        """The test's baseline document (None without one), or why it cannot be used."""
        try:
            return self.session.store.load(self.baseline_path), ""
        except BaselineError as error:
            return None, str(error)

    def _judge(self, metrics: tuple[Metric, ...], stored_metrics: dict[str, Any], policy: Policy) -> list[Verdict]:
        verdicts = []
        for metric in metrics:
            stored_record = stored_metrics.get(metric.name)
            try:
                tolerance = self.tolerance_for(metric)
            except OptionError as error:  # a tolerance given by metric name that its kind cannot mean
                pytest.fail(f"pytest-accel: {error}", pytrace=False)
            verdict = compare(metric, stored_record, *tolerance, policy, self._device_probes(), self._others_share)
            if verdict.regressed and metric.kind_info.timed:
                verdict = self._confirm(verdict, stored_record, policy)
            verdicts.append(verdict)
        return verdicts

    def finish(self) -> None:
        """At the end of the test: baseline metrics it no longer produced fail it under missing=fail, and are
        listed in the summary otherwise."""
        produced = {v.metric.name for v in self.record.verdicts}
        absent = sorted(self.record.stored_names - produced) if self.record.verdicts else []
        self.record.absent = absent
        if absent and self.session.options.missing_baseline == "fail":
            pytest.fail(
                f"pytest-accel: {self.baseline_path} holds metric(s) this test no longer produces: "
                f"{', '.join(absent)} ({OPT_MISSING}=fail); if that is intended, re-record: {self.update_command()}",
                pytrace=False,
            )

    def _check_stored_identity(self, metrics: tuple[Metric, ...], stored_metrics: dict[str, Any]) -> None:
        """A stored metric of another kind, unit or direction is not a baseline for this one: judging it would
        invert or rescale the verdict."""
        for metric in metrics:
            record = stored_metrics.get(metric.name)
            if record is None:
                continue
            for field in ("kind", "unit", "direction"):
                if record[field] != getattr(metric, field):
                    pytest.fail(
                        f"pytest-accel: baseline file {self.baseline_path}: metric {metric.name!r} is stored with "
                        f"{field} {record[field]!r} but measured with {field} {getattr(metric, field)!r}; re-record "
                        f"it: {self.update_command()}",
                        pytrace=False,
                    )

    def _confirm(self, first: Verdict, stored: dict[str, Any] | None, policy: Policy) -> Verdict:
        """Measure a regressed timed metric again and keep the regression only if the second measurement shows it
        too; the verdict carries both.

        A metric judged on its run history is measured again in a fresh pytest process: on shared machines a
        whole process can run in a slow state (thread placement, memory layout) that a second measurement in the
        same process would only repeat. Measured here: 1 run in 12 of the detector on ``ort:cpu`` ran 33–45%
        slower throughout, with the probe unchanged. Other metrics, and a fresh process that cannot run, are
        measured again in this process (fresh rounds, fresh probe)."""
        again: Metric | None = None
        where = "a second measurement"
        if first.effective_tolerance is not None and not os.environ.get(CONFIRMING_ENV):
            again = self._fresh_process_metric(first.metric.name)
            where = "a second measurement in a fresh process"
        if again is None:
            again, where = self._same_process_metric(first.metric.name), "a second measurement"
        if again is None:
            return first
        second = compare(again, stored, first.tolerance, first.tolerance_source, policy, self._device_probes(),
                         self._others_share)
        measured_again = format_value(again.value, again.unit)
        if second.regressed or second.status == "inconclusive":
            # inconclusive: beyond the limit again, on a disturbed machine; the first measurement, on an undisturbed
            # one (else it would be inconclusive itself), stands
            during = ", on a disturbed machine" if second.status == "inconclusive" else ""
            return replace(first, detail=f"{first.detail}; confirmed by {where} ({measured_again}{during})",
                           remeasured_value=again.value)
        return replace(first, status="noise",
                       detail=f"not confirmed by {where} ({measured_again}: {second.detail}); the first said: "
                       f"{first.detail}", remeasured_value=again.value)

    def _same_process_metric(self, metric_name: str) -> Metric | None:
        name = metric_name.rpartition(".")[0]
        if name not in self._remeasure:
            return None
        if name not in self._remeasured:
            self._remeasured[name] = self._remeasure[name]()
        return next((m for m in self._remeasured[name].metrics() if m.name == metric_name), None)

    def _fresh_process_metric(self, metric_name: str) -> Metric | None:
        """The metric as this test measures it when run again, alone, in a new pytest process (run once per test);
        None when that run fails or does not produce it."""
        if self._fresh_run is None:
            self._fresh_run = run_in_fresh_process(self.session.options, self.item.path, self.item.nodeid,
                                                   self.device.spec)
        reported = self._fresh_run.get(metric_name)
        return reported.metric if reported is not None else None

    def _kept_history(self, stored_record: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """The runs a written speed metric keeps: the stored history under --accel-record-run, none otherwise
        (--accel-update-baselines starts anew: a deliberate change makes earlier runs another system's)."""
        if not self.session.options.record_run or not stored_record:
            return []
        history = stored_record.get("history")
        return [dict(h) for h in history if isinstance(h, dict)] if isinstance(history, list) else []

    def _write(self, verdicts: list[Verdict]) -> None:
        def records_from(current: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
            # called with the file's lock held, on the file as it is then: a history grows from what is stored
            # now, not from what this test read before another process added its run
            return {v.metric.name: baseline_record(v.metric, v.tolerance,
                                                   self._kept_history(current.get(v.metric.name)))
                    for v in verdicts}

        refused = ""
        try:
            old, records = self.session.store.update(self.baseline_path, records_from,
                                                     self.session.header(self.device),
                                                     overwrite_damaged=self.session.options.update_baselines)
        except BaselineError as error:
            refused = str(error)
        except OSError as error:
            refused = f"cannot write baseline {self.baseline_path}: {error}"
        if refused:  # failed outside the handler, so the message stands alone
            pytest.fail(f"pytest-accel: {refused}", pytrace=False)
        changes = []
        for name, record in records.items():
            before = (old or {}).get(name)
            was = format_value(before["value"], before["unit"]) if before else "none"
            changes.append(f"{name}: {was} -> {format_value(record['value'], record['unit'])}")
        self.session.written.append(WrittenBaseline(self.baseline_path, "updated" if old is not None else "created",
                                                    changes))

    def _obtained_path(self) -> Path | None:
        cache = getattr(self.session.config, "cache", None)
        if cache is None:
            return None
        folder = cache.mkdir("accel-obtained")
        return baseline_path(folder, self.device.key, self.location, self.test_name)

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
                "metrics": {v.metric.name: baseline_record(v.metric, v.tolerance) for v in self.record.verdicts},
            }
            atomic_write_json(obtained, json_safe(document))
        base = self.session.options.invocation_dir
        lines.append(f"  baseline: {display_path(self.baseline_path, base)}")
        if obtained is not None:
            lines.append(f"  obtained: {display_path(obtained, base)}")
        if any(v.metric.basis == "baseline" for v in failures + missing):
            lines.append(f"  update:   {self.update_command()}")
        else:
            lines.append("  (bounds and references are not baselines: an update would not settle this)")
        return "\n".join(map(terminal_text, lines))  # names from the test may hold control characters

    def update_command(self) -> str:
        return rerun_command(self.session.options, self.item.path, self.item.nodeid, self.device.spec, OPT_UPDATE)


__all__ = ["AccelChecker"]
