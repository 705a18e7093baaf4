"""Conformance scorecards: one Markdown and one JSON file per device, for a vendor's release notes or a CI artefact.

Per suite and dtype the tests' outcomes (pass, fail, xfail, unsupported), accuracy as a share of the reference,
parity errors against their bounds, the precision compute really ran in, speed with the speed-up over the run's
first device, and energy per inference with its uncertainty and the mean power (devices with an energy meter). Rows
are sorted and nothing varies between two runs of the same results but the header, so two scorecards diff cleanly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_accel.baselines import atomic_write_json, atomic_write_text, json_safe
from pytest_accel.manifest import UNSUPPORTED_REASON
from pytest_accel.metrics import SECTIONS, format_value
from pytest_accel.report.facts import RunFacts, SpeedKey, Speedups
from pytest_accel.report.safe_text import markdown_code, markdown_text
from pytest_accel.session import AccelSession
from pytest_accel.verdicts import Verdict

SCHEMA = "pytest-accel/scorecard"
SCHEMA_VERSION = 1
#: user properties a test report carries (through pytest-xdist too) to place it on a scorecard
_DEVICE, _SUITE, _TEST, _VARIANT = "accel_device", "accel_suite", "accel_test", "accel_variant"
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "unsupported", "skipped")


@dataclass
class Outcome:
    device: str
    suite: str
    test: str
    variant: str
    outcome: str
    reason: str = ""


# eq=False: registered as a pytest plugin, so hashable by identity (pytest before 9.1 keeps plugins in a set and
# stopped with an INTERNALERROR under --accel-scorecard)
@dataclass(eq=False)
class ScorecardCollector:
    """Records each test's outcome on its device; writes the scorecards at the end of the run."""

    folder: Path
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def place(self, item: pytest.Item, device_spec: str, suite: str, function: str, params: str) -> None:
        item.user_properties.extend([(_DEVICE, device_spec), (_SUITE, suite), (_TEST, function), (_VARIANT, params)])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = {name: str(value) for name, value in report.user_properties}
        if _DEVICE not in props:
            return
        outcome = _outcome(report)
        if outcome is None:
            return
        reason = _reason(report) if outcome in ("skipped", "unsupported", "xfailed", "failed") else ""
        known = self.outcomes.get(report.nodeid)
        if known is not None and known.outcome == "failed":
            return  # a failing teardown after a failed call: the first failure stands
        self.outcomes[report.nodeid] = Outcome(props[_DEVICE], props[_SUITE], props[_TEST], props[_VARIANT],
                                               outcome, reason)


def _outcome(report: pytest.TestReport) -> str | None:
    # a skip raised inside the test (WorkloadUnsupported in its body, as test_energy's) is a skip, not a failure
    if report.when in ("setup", "call") and report.skipped and not hasattr(report, "wasxfail"):
        return "unsupported" if _reason(report).startswith(UNSUPPORTED_REASON) else "skipped"
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        if report.skipped:  # skipped from inside the test (a device without an energy meter): not a failure
            return "skipped"
        return "passed" if report.passed else "failed"
    if report.failed:  # an error in setup or teardown
        return "failed"
    return None


def _reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", "") or getattr(report, "longreprtext", "") or longrepr or "")
    # the first line that says what failed: pytest-accel's own header ("1 check(s) failed on ...") says only where
    lines = [line.strip() for line in text.splitlines() if line.strip() and "check(s) failed on" not in line]
    return lines[0][:200] if lines else ""


def build_scorecards(session: AccelSession, collector: ScorecardCollector, facts: RunFacts
                     ) -> dict[str, dict[str, Any]]:
    """One scorecard document per device spec of the run, in the run's device order. Each metric is listed in the
    sections its kind and its workload declare (:attr:`~pytest_accel.metrics.Metric.report_sections`)."""
    devices = [d for d in session.devices() if d.available] if session.devices_resolved else []
    speedups = facts.speedups
    by_metric: dict[tuple[str, str, str, str, str], dict[str, Verdict]] = {}
    for record in session.records:
        for judged in record.verdicts:
            key = (record.suite, record.function, record.params, judged.metric.name, record.test)
            by_metric.setdefault(key, {})[record.device.spec] = judged
    cards: dict[str, dict[str, Any]] = {}
    for device in devices:
        outcomes = sorted((o for o in collector.outcomes.values() if o.device == device.spec),
                          key=lambda o: (o.suite, o.variant, o.test))
        groups: dict[tuple[str, str], dict[str, int]] = {}
        for outcome in outcomes:
            counts = groups.setdefault((outcome.suite, outcome.variant or "-"), dict.fromkeys(OUTCOMES, 0))
            counts[outcome.outcome] += 1
        sections: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
        for (suite, test, variant, metric_name, test_name), per_device in sorted(by_metric.items()):
            verdict = per_device.get(device.spec)
            if verdict is None:
                continue
            metric = verdict.metric
            row: dict[str, Any] = {"suite": suite, "test": test, "dtype": variant or "-", "metric": metric_name,
                                   "value": metric.value, "unit": metric.unit, "verdict": verdict.status}
            for section in metric.report_sections:
                sections[section].append(_section_row(section, row, verdict, speedups, device.spec,
                                                       SpeedKey(suite, test_name, metric_name)))
        info = device.info
        cards[device.spec] = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "device": {"spec": device.spec, "key": device.key, "describe": info.describe(),
                       "runtime": dict(info.runtime)},
            "software": session.software,
            "git_commit": session.git_commit,
            "totals": {name: sum(c[name] for c in groups.values()) for name in OUTCOMES},
            "suites": [{"suite": suite, "dtype": variant, **counts}
                       for (suite, variant), counts in sorted(groups.items())],
            "tests": [{"suite": o.suite, "test": o.test, "dtype": o.variant or "-", "outcome": o.outcome,
                       "reason": o.reason} for o in outcomes],
            **sections,
            "datasheet": session.peak_for(device).summary() if device.spec in session.peaks() else None,
        }
    return cards


def _section_row(section: str, row: dict[str, Any], verdict: Verdict, speedups: Speedups, device: str,
                 key: SpeedKey) -> dict[str, Any]:
    """``row`` (suite, test, dtype, metric, value, unit, verdict) with what ``section`` shows besides."""
    metric = verdict.metric
    row = dict(row)
    if section == "accuracy":
        reference = metric.expected if metric.expected is not None else verdict.baseline_value
        row["reference"] = reference
        row["against"] = "reference" if metric.expected is not None else "baseline"
        row["percent_of_reference"] = 100 * metric.value / reference if reference else None
    elif section == "parity":
        row["bound"] = verdict.tolerance
        row["precision"] = metric.summary.get("precision")
        if "on_host" in metric.summary:  # a compiled model's delegation (devices/compiled.py: Delegation.summary)
            row["delegation"] = {key: metric.summary.get(key) for key in ("delegated_ops", "total_ops", "partitions",
                                                                           "on_host")}
    elif section == "precision":
        if metric.kind == "parity":  # listed under parity too: the precision table repeats that row's fields
            row |= {"bound": verdict.tolerance, "precision": metric.summary.get("precision")}
        execution = metric.summary.get("execution", metric.summary)
        row["compute_ops"] = dict(sorted(execution.get("compute_ops", {}).items()))
    elif section == "energy":
        row |= {key: metric.summary.get(key) for key in ("uncertainty", "mean_power_w", "meter", "update_period_s")}
    elif section == "ceiling":
        summary = metric.summary
        row["bound"] = verdict.tolerance if metric.kind == "share" else None
        row["detail"] = _ceiling_detail(metric.kind, summary)
    elif section == "speed":
        paired = speedups.paired(device, key)
        row["speedup_over"] = speedups.reference if paired else None
        row["speedup"] = speedups.over(device, key) if paired else None
    return row


def _ceiling_detail(kind: str, summary: dict[str, Any]) -> str:
    """What a ceiling row was divided by or measured at, in a few words (the sources are listed once, below)."""
    if kind == "share":
        text = (f"{_number(summary.get('achieved'))} of {_number(summary.get('peak'))} {summary.get('unit', '')} "
                f"{summary.get('precision', '')}").strip()
        if summary.get("estimated"):
            text += " (estimated peak)"
        if summary.get("above_peak"):
            text += "; above the peak: the clock the estimate assumes is too low"
        return text
    if summary.get("roofline"):
        where = f"{_number(summary.get('intensity'))} FLOP/B"
        if "bound" in summary:
            where += f", {summary['bound']}-bound, {summary['share_of_attainable']:.1%} of the roof there"
        return where
    for key in ("estimate", "price_source", "tdp_source", "share_of_peak", "stopped"):
        if summary.get(key):
            return str(summary[key])
    return "-"


def _peak_sources(datasheet: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Where the peaks of the section come from, once: the estimate's formulas and clock, or the entry's sources."""
    lines = []
    estimate = datasheet.get("estimate") or {}
    if estimate:
        lines.append(f"- clock {estimate.get('clock_ghz', 0):.3g} GHz, from {estimate.get('clock_source', '?')}")
        lines += [f"- {precision}: {formula}" for precision, formula in (estimate.get("formulas") or {}).items()]
        lines += [f"- assumed: {assumption}" for assumption in estimate.get("assumptions") or []]
        lines.append(f"- memory bandwidth: {estimate.get('bandwidth_source', '?')}")
    lines += [f"- {field}: {source}" for field, source in (datasheet.get("sources") or {}).items()]
    if any(r["metric"].endswith("achieved_tflops") for r in rows):
        lines.append("- FLOPs counted by PyTorch's flop counter; traffic estimated as parameters and input read once "
                     "and each layer's output written and read once (no fusion: the intensity is a lower bound)")
    return [markdown_text(line) for line in lines]


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return format_value(float(value), unit) if isinstance(value, (int, float)) else str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(markdown_text(cell) for cell in row) + " |" for row in rows]
    return lines


def markdown(card: dict[str, Any]) -> str:
    device = card["device"]
    totals = card["totals"]
    lines = [f"# Conformance scorecard: {markdown_code(device['spec'])}", "",
             f"Device key {markdown_code(device['key'])}: {markdown_text(device['describe'])}. "
             f"pytest-accel {card['software'].get('pytest-accel', '?')}, commit {card['git_commit'] or 'unknown'}.", "",
             "**" + ", ".join(f"{totals[name]} {name}" for name in OUTCOMES if totals[name]) + "**", "",
             "## Tests per suite and dtype", ""]
    lines += _table(["suite", "dtype", *OUTCOMES],
                    [[s["suite"], s["dtype"], *(str(s[name]) for name in OUTCOMES)] for s in card["suites"]])
    if card["accuracy"]:
        lines += ["", "## Accuracy", ""]
        lines += _table(["suite", "dtype", "metric", "value", "against", "% of it", "verdict"],
                        [[r["suite"], r["dtype"], r["metric"], f"{r['value']:.4g}",
                          f"{r['against']} {_number(r['reference'])}",
                          "-" if r["percent_of_reference"] is None else f"{r['percent_of_reference']:.1f}%",
                          r["verdict"]] for r in card["accuracy"]])
    if card["parity"]:
        lines += ["", "## Parity", ""]
        lines += _table(["suite", "dtype", "metric", "value", "bound", "precision that ran", "verdict"],
                        [[r["suite"], r["dtype"], r["metric"], f"{r['value']:.4g}", _number(r["bound"]),
                          str(r["precision"] or "-"), r["verdict"]] for r in card["parity"]])
    delegated = [r for r in card["parity"] if r.get("delegation")]
    if delegated:
        lines += ["", "## Delegation", ""]
        lines += _table(["suite", "dtype", "operators delegated", "partitions", "operators left on the host"],
                        [[r["suite"], r["dtype"], f"{r['delegation']['delegated_ops']} of "
                          f"{r['delegation']['total_ops']} ({r['value']:.1%})", str(r["delegation"]["partitions"]),
                          ", ".join(f"{op} {n}" for op, n in r["delegation"]["on_host"].items()) or "none"]
                         for r in delegated])
    if card["precision"]:
        lines += ["", "## Precision compute ran in", ""]
        lines += _table(["suite", "dtype", "metric", "compute operations per precision"],
                        [[r["suite"], r["dtype"], r["metric"],
                          ", ".join(f"{p} {n}" for p, n in r["compute_ops"].items())] for r in card["precision"]])
    if card["speed"]:
        lines += ["", "## Speed", ""]
        lines += _table(["suite", "dtype", "metric", "value", "speed-up", "verdict"],
                        [[r["suite"], r["dtype"], r["metric"], _number(r["value"], r["unit"]),
                          f"{r['speedup']:.2f}x over {r['speedup_over']}" if r["speedup"] else "-", r["verdict"]]
                         for r in card["speed"]])
    if card.get("energy"):
        lines += ["", "## Energy", ""]
        lines += _table(["suite", "dtype", "metric", "value", "uncertainty", "mean power", "meter", "verdict"],
                        [[r["suite"], r["dtype"], r["metric"], _number(r["value"], r["unit"]),
                          _number(r["uncertainty"], r["unit"]), _number(r["mean_power_w"], "W"),
                          f"{r['meter']}, period {_number(r['update_period_s'], 's')}" if r["meter"] else "-",
                          r["verdict"]] for r in card["energy"]])
    if card.get("ceiling"):
        lines += ["", "## Against the datasheet", ""]
        datasheet = card.get("datasheet") or {}
        if datasheet:
            lines += [f"Peaks: {markdown_text(datasheet.get('origin', 'none'))}."
                      + (f" {markdown_text(datasheet['missing'])}." if datasheet.get("missing") else ""), ""]
        lines += _table(["suite", "dtype", "metric", "value", "floor", "against", "verdict"],
                        [[r["suite"], r["dtype"], r["metric"],
                          f"{r['value']:.1%}" if r["unit"] == "" and r["metric"].endswith("share_of_peak")
                          else _number(r["value"], r["unit"]), _number(r.get("bound")), r.get("detail", "-"),
                          r["verdict"]] for r in card["ceiling"]])
        sources = _peak_sources(datasheet, card["ceiling"])
        if sources:
            lines += ["", "Where the peaks come from:", "", *sources]
    not_passed = [t for t in card["tests"] if t["outcome"] != "passed"]
    if not_passed:
        lines += ["", "## Tests that did not pass", ""]
        lines += _table(["suite", "dtype", "test", "outcome", "reason"],
                        [[t["suite"], t["dtype"], t["test"], t["outcome"], t["reason"] or "-"] for t in not_passed])
    return "\n".join(lines) + "\n"


def write_scorecards(folder: Path, cards: dict[str, dict[str, Any]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for card in cards.values():
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", card["device"]["key"])
        atomic_write_json(folder / f"{stem}.json", json_safe(card))
        atomic_write_text(folder / f"{stem}.md", markdown(card))
        written += [folder / f"{stem}.json", folder / f"{stem}.md"]
    return written
