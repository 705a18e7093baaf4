"""``pytest-accel gate-check``: run timed tests in separate processes, unchanged and slowed, and measure the gate.

Each candidate run is judged with :func:`pytest_accel.verdicts.compare` against a history made of the *other*
unchanged runs (leave one out), exactly as a CI run is judged against a baseline recorded over several runs. A
regression is then confirmed as a real run confirms it, in a fresh process: here by the next round's run of the
same condition, judged against the same history less that round; both must regress.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pytest_accel.baselines import atomic_write_json
from pytest_accel.history import run_summary
from pytest_accel.metrics import KINDS, Metric, measurement_of
from pytest_accel.options import OPT_INJECT_SLOWDOWN
from pytest_accel.progress import NULL_PROGRESS, Progress, stream_progress
from pytest_accel.report.document import ReportedMetric, ReportError, load_report, read_metrics
from pytest_accel.report.lines import aligned_table
from pytest_accel.rerun import pytest_process
from pytest_accel.verdicts import MIN_HISTORY, Policy, Verdict, compare

DETECTION_TARGET = 0.95
#: each run is judged against the other unchanged runs, which must make a usable history
MIN_GATE_CHECK_RUNS = 6
RUNNING_PHASE = "gate check: pytest runs"


class GateCheckRefused(Exception):
    """The runs' pytest arguments were refused (a usage error): no run measures anything."""


@dataclass(frozen=True)
class Run:
    slowdown: float
    index: int
    report: Path
    #: None where the process could not run
    exit_status: int | None
    seconds: float


#: numbers of candidate runs whose median the self-check also judges (pytest-accel repeat), where the runs
#: leave a history of at least MIN_HISTORY beside them
CANDIDATE_RUNS = (3, 5, 7)


@dataclass
class MetricOutcome:
    name: str
    unchanged: dict[int, str] = field(default_factory=dict)  # verdict status by unchanged run (its round)
    slowed: dict[float, list[str]] = field(default_factory=dict)
    #: per number of candidate runs k, per slowdown (0: unchanged): the statuses of the medians of k runs
    medians: dict[int, dict[float, list[str]]] = field(default_factory=dict)
    run_cv: float | None = None  # run-to-run CV of the unchanged runs' values
    normalised_cv: float | None = None

    def rate(self, statuses: list[str], status: str = "regression") -> float:
        return statuses.count(status) / len(statuses) if statuses else 0.0

    @property
    def unchanged_statuses(self) -> list[str]:
        return list(self.unchanged.values())

    def smallest_caught(self) -> float | None:
        caught = [s for s, statuses in sorted(self.slowed.items()) if self.rate(statuses) >= DETECTION_TARGET]
        return caught[0] if caught else None


def run_conditions(pytest_args: list[str], runs: int, slowdowns: list[float], folder: Path) -> Iterator[Run]:
    """Every condition ``runs`` times, interleaved (each round in a rotated order), in separate processes."""
    folder.mkdir(parents=True, exist_ok=True)
    empty_baselines = folder / "no-baselines"
    conditions = [0.0, *slowdowns]
    for index in range(runs):
        shift = index % len(conditions)
        for slowdown in conditions[shift:] + conditions[:shift]:
            report = folder / f"run-{index:02d}-slowdown-{slowdown:g}.json"
            args = [*pytest_args, "--accel-gate=none", f"--accel-baseline-dir={empty_baselines}", "-p",
                    "no:cacheprovider", "-q", f"{OPT_INJECT_SLOWDOWN}={slowdown:g}"]
            start = time.perf_counter()
            process = pytest_process(args, Path.cwd(), report)
            if process.usage_error is not None:  # every other run would be refused the same way
                raise GateCheckRefused(f"pytest refused the arguments: {process.usage_error}")
            yield Run(slowdown, index, report, process.status, time.perf_counter() - start)


def _speed_metrics(report: Path) -> dict[str, ReportedMetric] | None:
    """A run's speed metrics by ``<node id>::<metric name>``; None where it wrote no readable report."""
    try:
        read, _ = read_metrics(load_report(report))
    except ReportError:
        return None
    return {f"{r.result.get('nodeid') or r.result['test']}::{r.metric.name}": r for r in read
            if r.metric.kind_info.speed and r.entry.get("run")}


def _metric(name: str, reported: ReportedMetric) -> Metric:
    """The metric as it was measured, under the name the self-check knows it by."""
    metric = reported.metric
    return Metric(name, metric.value, metric.unit, metric.kind, metric.direction, samples=metric.samples,
                  probe_samples=metric.probe_samples)


def _cv(values: list[float]) -> float | None:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) >= 2 else None


def judge(runs: list[Run], alpha: float, latency_basis: str = "auto") -> dict[str, MetricOutcome]:
    """Every run's speed metrics judged against the other unchanged runs' history."""
    read = [(run, _speed_metrics(run.report)) for run in runs]
    loaded = [(run, entries) for run, entries in read if entries is not None]
    unchanged = [(run, entries) for run, entries in loaded if run.slowdown == 0]
    names = sorted({name for _, entries in unchanged for name in entries})
    measurements = {
        (name.rpartition("::")[0], measurement_of(entries[name].metric.name, entries[name].metric.kind))
        for _, entries in unchanged for name in entries
    }
    policy = Policy(frozenset(KINDS), alpha=alpha, latency_basis=latency_basis,
                    family_size=max(len(measurements), 1))
    outcomes = {name: MetricOutcome(name) for name in names}
    # each run's summary per metric, computed once: the history of every other run's judgement reuses them
    summaries = {run.report: {name: run_summary(_metric(name, entry)) for name, entry in entries.items()}
                 for run, entries in loaded}
    for name, outcome in outcomes.items():
        values = [summaries[run.report][name] for run, entries in unchanged if name in entries]
        outcome.run_cv = _cv([v["value"] for v in values])
        if values and all(v.get("probe") for v in values):
            lower = next(e[name].metric.direction for _, e in unchanged if name in e) == "lower"
            outcome.normalised_cv = _cv([v["value"] / v["probe"] if lower else v["value"] * v["probe"]
                                         for v in values])
    by_condition = {(run.slowdown, run.index): (run, entries) for run, entries in loaded}
    indices = sorted({run.index for run, _ in loaded})

    def judged(run: Run, entries: dict[str, Any], name: str, left_out: set[int]) -> Verdict | None:
        # the history: every unchanged run but the candidate's round (for a slowed run, the unchanged run of its
        # round) and the rounds left out
        history = [summaries[r.report][name] for r, e in unchanged
                   if r.index != run.index and r.index not in left_out and name in e]
        if len(history) < MIN_HISTORY:
            return None
        reported = entries[name]
        record = {"value": statistics.median(h["value"] for h in history), "unit": reported.metric.unit,
                  "history": history}
        return compare(_metric(name, reported), record, reported.entry["tolerance"], "gate-check", policy)

    _judge_medians(outcomes, loaded, summaries, policy)
    for run, entries in loaded:
        for name, outcome in outcomes.items():
            if name not in entries:
                continue
            verdict = judged(run, entries, name, set())
            if verdict is None:
                continue
            status = verdict.status
            if verdict.regressed and verdict.effective_tolerance is not None:
                # as a real run does, confirm in a fresh process: here, the next round's run of the same condition
                confirming = _next_run(by_condition, indices, run)
                if confirming is not None and name in confirming[1]:
                    left_out = {confirming[0].index}
                    first, second = judged(run, entries, name, left_out), judged(*confirming, name, left_out)
                    if first is not None and second is not None:
                        agrees = second.regressed or second.status == "inconclusive"
                        status = "regression" if first.regressed and agrees else "noise"
            if run.slowdown == 0:
                outcome.unchanged[run.index] = status
            else:
                outcome.slowed.setdefault(run.slowdown, []).append(status)
    return outcomes


def _judge_medians(outcomes: dict[str, MetricOutcome], loaded: list[tuple[Run, dict[str, Any]]],
                 summaries: dict[Path, dict[str, dict[str, Any]]], policy: Policy) -> None:
    """The median of k runs of each condition (k consecutive rounds, wrapping round) judged as ``pytest-accel
    repeat`` judges it: against the unchanged runs of the other rounds, with the interval for such a median."""
    from pytest_accel.repeat import judge_candidates

    rounds = sorted({run.index for run, _ in loaded})
    by_condition = {(run.slowdown, run.index): (run, entries) for run, entries in loaded}
    conditions = sorted({run.slowdown for run, _ in loaded})
    for k in CANDIDATE_RUNS:
        if len(rounds) - k < MIN_HISTORY:
            continue
        for start in range(len(rounds)):
            window = {rounds[(start + step) % len(rounds)] for step in range(k)}
            for name, outcome in outcomes.items():
                history = [summaries[r.report][name] for (s, i), (r, e) in by_condition.items()
                           if s == 0 and i not in window and name in e]
                if len(history) < MIN_HISTORY:
                    continue
                for slowdown in conditions:
                    runs = [by_condition.get((slowdown, index)) for index in window]
                    chosen = [found for found in runs if found is not None and name in found[1]]
                    if len(chosen) < k:
                        continue
                    reported = chosen[0][1][name]
                    record = {"value": statistics.median(h["value"] for h in history),
                              "unit": reported.metric.unit, "history": history}
                    verdict = judge_candidates(_metric(name, reported), [summaries[r.report][name] for r, _ in chosen],
                                         record, reported.entry["tolerance"], policy)
                    outcome.medians.setdefault(k, {}).setdefault(slowdown, []).append(verdict.status)


def _next_run(by_condition: dict[tuple[float, int], tuple[Run, dict[str, Any]]], indices: list[int],
              run: Run) -> tuple[Run, dict[str, Any]] | None:
    """The run of the same condition in the next round (wrapping round), the fresh-process confirmation."""
    position = indices.index(run.index)
    for step in range(1, len(indices)):
        found = by_condition.get((run.slowdown, indices[(position + step) % len(indices)]))
        if found is not None:
            return found
    return None


def _runs_for(run_cv: float | None, alpha: float, history_runs: int) -> int | None:
    """Candidate runs whose median catches +10% at 95% with this metric's measured run-to-run spread (the CV
    divided by the probe where there is one, else the absolute CV, as the log spread), against a history of
    ``history_runs`` runs; None where no number of runs does."""
    from pytest_accel.stats import candidate_runs_for

    if run_cv is None or history_runs < 2:
        return None
    return candidate_runs_for(run_cv, 0.10, alpha, history_runs)


def summarise(runs: list[Run], outcomes: dict[str, MetricOutcome], alpha: float = 0.01) -> dict[str, Any]:
    unchanged_runs = sorted({run.index for run in runs if run.slowdown == 0})
    alpha_per_metric = alpha / max(len(outcomes), 1)
    failing_runs = sum(
        any(o.unchanged.get(index) == "regression" for o in outcomes.values()) for index in unchanged_runs
    )
    slowdowns = sorted({run.slowdown for run in runs if run.slowdown})
    per_metric = {
        name: {
            "false_alarm_rate": o.rate(o.unchanged_statuses),
            "inconclusive_rate": o.rate(o.unchanged_statuses, "inconclusive"),
            "detection_rate": {f"{s:g}": o.rate(o.slowed.get(s, [])) for s in slowdowns},
            "smallest_slowdown_caught_95": o.smallest_caught(),
            "run_cv": o.run_cv,
            "run_cv_normalised": o.normalised_cv,
            "judged_unchanged_runs": len(o.unchanged),
            "median_of_runs": {str(k): {"false_alarm_rate": o.rate(per.get(0.0, [])),
                                      "detection_rate": {f"{s:g}": o.rate(per.get(s, [])) for s in slowdowns}}
                             for k, per in sorted(o.medians.items())},
            "runs_for_10_percent": _runs_for(o.normalised_cv if o.normalised_cv is not None else o.run_cv,
                                             alpha_per_metric, len(unchanged_runs) - 1),
        }
        for name, o in outcomes.items()
    }
    all_unchanged = [status for o in outcomes.values() for status in o.unchanged_statuses]
    ks = sorted({k for o in outcomes.values() for k in o.medians})
    pooled_medians = {
        str(k): {"false_alarm_rate": _pooled([o.medians.get(k, {}).get(0.0, []) for o in outcomes.values()]),
                 "detection_rate": {f"{s:g}": _pooled([o.medians.get(k, {}).get(s, []) for o in outcomes.values()])
                                    for s in slowdowns}}
        for k in ks}
    return {
        "median_of_runs": pooled_medians,
        "runs_per_condition": len(unchanged_runs),
        "slowdowns": slowdowns,
        "run_false_alarm_rate": failing_runs / len(unchanged_runs) if unchanged_runs else None,
        "metric_false_alarm_rate": all_unchanged.count("regression") / len(all_unchanged) if all_unchanged else None,
        "detection_rate": {
            f"{s:g}": _pooled([o.slowed.get(s, []) for o in outcomes.values()]) for s in slowdowns
        },
        "metrics": per_metric,
        "failed_processes": [str(run.report) for run in runs if run.exit_status not in (0, 1)],
    }


def _pooled(groups: list[list[str]]) -> float | None:
    statuses = [status for group in groups for status in group]
    return statuses.count("regression") / len(statuses) if statuses else None


def lines(summary: dict[str, Any]) -> Iterator[str]:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.0f}%"

    slowdowns = [f"{s:g}" for s in summary["slowdowns"]]
    yield (f"gate self-check: {summary['runs_per_condition']} runs per condition; unchanged runs failing any timed "
           f"check: {pct(summary['run_false_alarm_rate'])}; per metric: {pct(summary['metric_false_alarm_rate'])}")
    yield "caught per slowdown (all metrics): " + ", ".join(
        f"+{float(s) * 100:g}%: {pct(summary['detection_rate'][s])}" for s in slowdowns
    )
    for k, figures in summary.get("median_of_runs", {}).items():
        yield (f"median of {k} runs (pytest-accel repeat --runs {k}): false alarms {pct(figures['false_alarm_rate'])}; "
               "caught " + ", ".join(f"+{float(s) * 100:g}%: {pct(figures['detection_rate'][s])}"
                                     for s in slowdowns))
    header = ["metric", "false alarms", "inconclusive", *[f"+{float(s) * 100:g}%" for s in slowdowns],
              "caught >=95% from", "run CV", "normalised CV", "runs for +10%"]
    rows = [header]
    for name, m in summary["metrics"].items():
        smallest = m["smallest_slowdown_caught_95"]
        parts = name.split("::")
        rows.append([" ".join(parts[-2:]),
                     pct(m["false_alarm_rate"]), pct(m["inconclusive_rate"]),
                     *[pct(m["detection_rate"][s]) for s in slowdowns],
                     f"+{smallest * 100:g}%" if smallest else "not reached",
                     pct(m["run_cv"]) if m["run_cv"] is None else f"{m['run_cv'] * 100:.1f}%",
                     "-" if m["run_cv_normalised"] is None else f"{m['run_cv_normalised'] * 100:.1f}%",
                     "-" if m.get("runs_for_10_percent") is None else str(m["runs_for_10_percent"])])
    yield from aligned_table(rows)


def gate_check(pytest_args: list[str], runs: int, slowdowns: list[float], folder: Path, out: Path,
               alpha: float, progress: Progress = NULL_PROGRESS) -> dict[str, Any]:
    done: list[Run] = []
    total = runs * (len(slowdowns) + 1)
    progress.update(RUNNING_PHASE, 0, total, "runs")
    for run in run_conditions(pytest_args, runs, slowdowns, folder):
        done.append(run)
        progress.update(RUNNING_PHASE, len(done), total, "runs", f"slowdown {run.slowdown:g}, round "
                        f"{run.index + 1}: exit {run.exit_status} in {run.seconds:.0f} s")
    summary = summarise(done, judge(done, alpha), alpha)
    summary["pytest_args"] = pytest_args
    atomic_write_json(out, summary)
    return summary


def run_gate_check(args: argparse.Namespace) -> int:
    """The ``gate-check`` subcommand: its arguments checked, the runs, the summary printed."""
    pytest_args = [a for a in args.pytest_args if a != "--"]
    if not pytest_args:
        print("pytest-accel: gate-check needs the timed tests to run after --, e.g. -- suites/test_matmul.py "
              "--device=cpu", file=sys.stderr)
        return 2
    try:
        slowdowns = sorted({float(part) for part in args.slowdowns.split(",") if part.strip()})
    except ValueError:
        slowdowns = []
    if not slowdowns or any(not 0 < s <= 10 for s in slowdowns):
        print(f"pytest-accel: --slowdowns={args.slowdowns!r}: expected fractions such as 0.05,0.1,0.2", file=sys.stderr)
        return 2
    if args.runs < MIN_GATE_CHECK_RUNS:
        print(f"pytest-accel: --runs={args.runs}: at least {MIN_GATE_CHECK_RUNS} (each run is judged against the "
              "other unchanged runs)", file=sys.stderr)
        return 2
    folder = Path(args.work_dir) if args.work_dir else Path(args.out).with_suffix("")
    try:
        summary = gate_check(pytest_args, args.runs, slowdowns, folder, Path(args.out), args.alpha,
                             stream_progress(quiet=args.quiet))
    except GateCheckRefused as error:
        print(f"pytest-accel: gate-check: {error}", file=sys.stderr)
        return 2
    for line in lines(summary):
        print(line)
    print(f"written: {args.out} (runs in {folder})")
    return 0
