"""``pytest-accel repeat``: buy power with runs — the candidate measured in ``k`` fresh processes, the median of its
runs judged against the stored history with the prediction interval for such a median.

One run against a history of ``n`` runs with run-to-run spread ``s`` (log scale) is held to
``t * s * sqrt(1 + 1/n)``: on a shared runner, 15-20% or more. The median of ``k`` independent runs is held to
``t * s * sqrt(m_k + 1/n)``, with ``m_k`` the variance of a median of k normal draws (0.45 for 3, 0.29 for 5,
about pi/2k for more): with ``k = 5`` and ``n = 10`` the limit shrinks to about 60% of the single run's. A median,
not a mean: one process in a slow state (about one run in ten here) would carry a mean of three past the limit
alone, as it would a single run that no second process confirmed. Where the history shows slow phases that outlast
a run (consecutive runs alike, lag-one correlation ``rho``), k runs made one after another share them and the
interval widens to ``rho + (1 - rho) * m_k``. Each run is a fresh process because the process is where much of the
run-to-run luck lives (the memory a process gets, its threads' placement); rounds within one process do not
average it out.

Every judgement is the plugin's own (:func:`pytest_accel.verdicts.compare`: the same series, probe adjustment,
outlier handling, disturbed-machine rule and family-wise significance, counted over the devices' baselines as the
plugin counts it); only the interval changes. Nothing is written to the baselines: the runs use
``--accel-gate=none`` and read the baseline folder as their arguments name it.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_accel.baselines import BaselineError, BaselineStore, file_stem
from pytest_accel.metrics import KINDS, Metric
from pytest_accel.records import metric_from_dict
from pytest_accel.report.document import ReportError, load_report, read_metrics
from pytest_accel.verdicts import MIN_HISTORY, Policy, Verdict, compare

#: series a run summary holds, combined over the candidate runs as medians
_COMBINED_FIELDS = ("value", "probe", "floor", "probe_floor")


#: more candidate runs than this add little: the history's own 1/n dominates the interval long before
MAX_RUNS = 50


class RepeatError(Exception):
    """The repeated runs cannot be judged; the message is one line."""


def combined_summary(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One run-level summary for ``k`` candidate runs: the median (on a log scale) of the value, of the probe and of
    the lower quartiles (a field only where every run has it), and ``candidates: k`` for the verdict's interval. A
    median, because one process in a slow state (seen here in about one run in ten) would move a mean of three runs
    past the limit alone; a single run's regression is confirmed in a second process for the same reason."""
    if not summaries:
        raise ValueError("no run summaries to combine")
    combined: dict[str, Any] = {"candidates": len(summaries)}
    for name in _COMBINED_FIELDS:
        values = [summary.get(name) for summary in summaries]
        if all(isinstance(v, (int, float)) and v > 0 for v in values):
            combined[name] = math.exp(statistics.median(math.log(float(v)) for v in values if v is not None))
    if "value" not in combined:
        raise ValueError("a candidate run has no positive value")
    spreads = sorted(float(s["spread"]) for s in summaries if s.get("spread"))
    if spreads:
        combined["spread"] = spreads[len(spreads) // 2]
        combined["n"] = min(int(s["n"]) for s in summaries if s.get("n"))
    return combined


@dataclass(frozen=True)
class Judged:
    device: str
    test: str
    name: str
    unit: str
    values: tuple[float, ...]
    #: the verdict on the median of the runs; None where there is no usable history
    verdict: Verdict | None
    #: the verdict the first run alone would have had, for the limit it was held to
    single: Verdict | None
    note: str = ""


def _baseline_root(path: Path, device_key: str) -> Path:
    """The baseline folder holding ``path``: the parent of its device key's folder."""
    for ancestor in path.parents:
        if ancestor.name == file_stem(device_key):
            return ancestor.parent
    raise RepeatError(f"baseline file {path} does not lie in a folder of device key {device_key!r}")


def _reports(paths: Sequence[Path]) -> list[dict[str, Any]]:
    documents = []
    for path in paths:
        try:
            documents.append(load_report(path))
        except ReportError as error:
            raise RepeatError(f"a candidate run wrote no report to judge: {error}") from None
    return documents


def judge_runs(reports: Sequence[Path], alpha: float) -> list[Judged]:
    """Every speed metric that all runs reported, its runs' median judged against its stored history."""
    per_metric: dict[tuple[str, str], list[tuple[Metric, Mapping[str, Any], Mapping[str, Any]]]] = {}
    for document in _reports(reports):
        read, _ = read_metrics(document)
        for r in read:
            if r.metric.kind_info.speed and isinstance(r.entry.get("run"), Mapping):
                per_metric.setdefault((r.result["baseline_file"], r.metric.name), []).append(
                    (r.metric, r.entry, r.result))
    complete = {key: runs for key, runs in per_metric.items() if len(runs) == len(reports)}
    policy = Policy(frozenset(KINDS), alpha=alpha, family_size=_family_size(complete.values()), busy_host_share=1.0)
    judged = []
    for (baseline_file, name), runs in sorted(complete.items()):
        metric, entry, result = runs[0]
        values = tuple(m.value for m, _, _ in runs)
        where = (result["device"], f"{result['suite']}::{result['test']}", name)
        record, note = _stored(Path(baseline_file), result["device_key"], name)
        history = record.get("history") if record is not None else None
        if record is None or not isinstance(history, list) or len(history) < MIN_HISTORY:
            judged.append(Judged(*where, metric.unit, values, None, None,
                                 note or f"no history of {MIN_HISTORY} runs to judge a mean against"))
            continue
        tolerance = entry.get("tolerance")
        summaries = [e["run"] for _, e, _ in runs]
        judged.append(Judged(*where, metric.unit, values,
                             judge_candidates(metric_from_dict(name, entry), summaries, record, tolerance, policy),
                             _judge_combined(metric_from_dict(name, entry), summaries[:1], record, tolerance,
                                             policy)))
    return judged


def _judge_combined(metric: Metric, summaries: Sequence[Mapping[str, Any]], record: Mapping[str, Any],
                    tolerance: float | None, policy: Policy) -> Verdict:
    combined = combined_summary(summaries)
    metric.value = combined["value"]
    metric.run_summary_cache = combined
    return compare(metric, record, tolerance, "repeat", policy)


def judge_candidates(metric: Metric, summaries: Sequence[Mapping[str, Any]], record: Mapping[str, Any],
                     tolerance: float | None, policy: Policy) -> Verdict:
    """The verdict on the median of ``summaries`` (candidate runs in fresh processes) against ``record``'s
    history, with the interval for such a median."""
    from dataclasses import replace

    return _judge_combined(replace(metric), summaries, record, tolerance, policy)


def _family_size(runs: Any) -> int:
    """As the plugin counts it: every speed metric with a usable history in the baselines of the devices the runs
    used, so judging fewer tests is never less strict."""
    from pytest_accel.session import count_history_metrics, device_documents

    roots: dict[str, Path] = {}
    for per_run in runs:
        _, _, result = per_run[0]
        try:
            roots.setdefault(result["device_key"], _baseline_root(Path(result["baseline_file"]), result["device_key"]))
        except RepeatError:
            continue
    documents = [entry for key, root in roots.items() for entry in device_documents(BaselineStore(root), key)]
    return max(count_history_metrics(documents, MIN_HISTORY), 1)


def _stored(path: Path, device_key: str, name: str) -> tuple[dict[str, Any] | None, str]:
    try:
        document = BaselineStore(_baseline_root(path, device_key)).load(path)
    except (BaselineError, RepeatError) as error:
        return None, f"baseline unusable: {error}"
    if document is None:
        return None, "no baseline file"
    record = document.get("metrics", {}).get(name)
    return (record, "") if isinstance(record, dict) else (None, "no baseline for this metric")


def exit_code(judged: Sequence[Judged]) -> int:
    return 1 if any(j.verdict is not None and j.verdict.regressed and j.verdict.gated for j in judged) else 0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def rows(judged: Sequence[Judged]) -> list[list[str]]:
    from pytest_accel.metrics import format_value

    table = [["device", "test", "metric", "runs (median)", "delta", "limit (k runs)", "limit (1 run)", "verdict"]]
    for j in judged:
        middle = math.exp(statistics.median(math.log(v) for v in j.values))
        verdict = j.verdict
        table.append([j.device, j.test, j.name, f"{len(j.values)} x {format_value(middle, j.unit)}",
                      _percent(verdict.delta) if verdict is not None else "-",
                      _percent(verdict.effective_tolerance) if verdict is not None else "-",
                      _percent(j.single.effective_tolerance) if j.single is not None else "-",
                      verdict.status if verdict is not None else j.note])
    return table


def to_dict(judged: Sequence[Judged], runs: int, alpha: float) -> dict[str, Any]:
    return {"schema": "pytest-accel/repeat", "schema_version": 1, "runs": runs, "alpha": alpha,
            "metrics": [{"device": j.device, "test": j.test, "name": j.name, "unit": j.unit, "values": list(j.values),
                         "verdict": j.verdict.status if j.verdict is not None else None,
                         "delta": j.verdict.delta if j.verdict is not None else None,
                         "limit": j.verdict.effective_tolerance if j.verdict is not None else None,
                         "single_run_limit": j.single.effective_tolerance if j.single is not None else None,
                         "detail": j.verdict.detail if j.verdict is not None else j.note} for j in judged]}


def add_command(commands: Any) -> None:
    """The ``repeat`` subcommand on the console script's parser."""
    repeat = commands.add_parser(
        "repeat", help="run the chosen tests in K fresh processes and judge the median of their speed "
        "metrics against the stored history, with the prediction interval for a median of K runs (more power per "
        "nightly job); exit 1 on a regression",
        description="pytest-accel repeat --runs 5 -- suites --device=cpu -k latency")
    repeat.add_argument("--runs", type=int, default=5, help="fresh candidate processes (default 5)")
    repeat.add_argument("--alpha", type=float, default=Policy.alpha,
                        help=f"false-alarm rate over the judged metrics (default {Policy.alpha})")
    repeat.add_argument("--out", default="repeat", metavar="DIR",
                        help="folder for the runs' reports and repeat.json (default ./repeat)")
    repeat.add_argument("--timeout", type=float, default=None, help="seconds one run may take (default: no limit)")
    repeat.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="after --: the pytest arguments of the candidate (tests, devices, the baseline folder)")
    repeat.set_defaults(run=run_command)


def run_command(args: Any) -> int:
    from pytest_accel.baselines import atomic_write_json
    from pytest_accel.report.lines import aligned_table
    from pytest_accel.rerun import CONFIRMING_ENV, pytest_process

    pytest_args = list(args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args)
    try:
        if args.runs > MAX_RUNS:
            raise RepeatError(f"--runs {args.runs}: at most {MAX_RUNS}")
        if args.runs < 3:
            raise RepeatError(f"--runs {args.runs}: at least 3 (a median of two is their mean, which one slow "
                              "process carries; one run is what pytest itself judges)")
        if not 0 < args.alpha < 1:
            raise RepeatError(f"--alpha {args.alpha}: a probability between 0 and 1")
        if not pytest_args:
            raise RepeatError("no tests given: pytest-accel repeat --runs 5 -- suites --device=cpu -k latency")
        writing = [a for a in pytest_args if a.split("=")[0] in ("--accel-update-baselines", "--accel-record-run")
                   or a.startswith("--accel-missing-baseline=record")]
        if writing:
            raise RepeatError(f"{writing[0]}: the repeated runs only read the baselines; record or update them "
                              "with pytest itself")
        out = Path(args.out)
        from pytest_accel.option_readers import unwritable_out_message

        message = unwritable_out_message(out)
        if message is not None:
            raise RepeatError(message)
        reports = []
        for index in range(args.runs):
            report = out / f"run-{index:02d}.json"
            report.unlink(missing_ok=True)
            print(f"pytest-accel repeat: run {index + 1}/{args.runs}", file=sys.stderr)
            # each run one measurement: no run confirms a slower metric in a fresh process of its own
            process = pytest_process([*pytest_args, "--accel-gate=none", "-p", "no:cacheprovider", "-q"],
                                     Path.cwd(), report, env={**os.environ, CONFIRMING_ENV: "1"},
                                     timeout=args.timeout)
            if process.usage_error is not None:
                raise RepeatError(f"pytest refused the arguments: {process.usage_error}")
            reports.append(report)
        judged = judge_runs(reports, args.alpha)
    except (RepeatError, OSError) as error:
        print(f"pytest-accel repeat: {error}", file=sys.stderr)
        return 2
    if not judged:
        print("pytest-accel repeat: the runs reported no speed metric to judge", file=sys.stderr)
        return 2
    atomic_write_json(out / "repeat.json", to_dict(judged, args.runs, args.alpha))
    print(f"{args.runs} fresh runs of the candidate, their median judged against each metric's history "
          f"(limit for a median of {args.runs} runs beside the limit one run is held to):")
    print("\n".join(aligned_table(rows(judged))))
    print(f"written: {out / 'repeat.json'}")
    return exit_code(judged)
