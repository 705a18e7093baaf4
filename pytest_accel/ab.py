"""``pytest-accel ab``: two software stacks compared on this machine, now — is B slower than A?

Each side is an interpreter (its environment: another driver, runtime or compiler build) with its own extra pytest
options and environment variables; both run the same tests, each run a fresh ``python -m pytest`` process writing
a JSON report, ``pairs`` times each, in a balanced order (:func:`pytest_accel.paired.balanced_order`). The runs
keep no baselines (a throwaway folder, nothing written) and gate nothing themselves; the comparison is here:

- every timed metric (latency, throughput, first runs, energy) gets B/A over the pairs with its interval and test
  (:mod:`pytest_accel.paired`), Holm over all of them: ``slower`` / ``faster`` / ``no difference detected``
  (with the smallest difference the pairs could have seen);
- every accuracy, parity and convergence metric is compared too: B less accurate than A beyond the metric kind's
  tolerance, or B outside a metric's bound in any run, is reported and fails the comparison as a slowdown does
  (a faster B that is less accurate is not a win).

The exit code gates: 0 no finding, 1 B slower beyond ``threshold`` (the estimate) with significance, less
accurate or outside a bound; 2 a run that failed to produce its report, or bad arguments.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_accel.metrics import KINDS, Metric, measurement_of
from pytest_accel.paired import (
    DEFAULT_ALPHA,
    DEFAULT_POWER,
    MIN_PAIRS,
    PairedEstimate,
    balanced_order,
    fewest_pairs,
    holm_per_measurement,
    paired_estimate,
)
from pytest_accel.report.document import ReportError, load_report, read_metrics
from pytest_accel.rerun import CONFIRMING_ENV
from pytest_accel.turns import SLICE_SECONDS, Command, run_in_turns

#: a metric of one test on one device: (device spec, suite, test, metric name)
MetricKey = tuple[str, str, str, str]
QUALITY_KINDS = ("accuracy", "parity", "convergence")


class AbError(Exception):
    """A comparison that cannot be made; the message is one line."""


@dataclass(frozen=True)
class Side:
    """One stack: an interpreter, with its extra pytest options and environment variables."""

    name: str
    python: str
    options: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        extra = [*self.options, *(f"{key}={value}" for key, value in sorted(self.env.items()))]
        return " ".join([self.python, *extra])


def parse_env(assignments: Sequence[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` strings given to ``option`` as a mapping; AbError naming the bad one otherwise."""
    env: dict[str, str] = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name or not name.replace("_", "a").isalnum():
            raise AbError(f"{option} {assignment!r}: expected NAME=VALUE, e.g. OMP_NUM_THREADS=2")
        env[name] = value
    return env


@dataclass(frozen=True)
class RunOutcome:
    pair: int
    side: str
    status: int | None
    seconds: float
    report: Path


@dataclass(frozen=True)
class RunMode:
    """How the runs are made steady. Measured here (detector on ``cpu``, A against A, 8-10 pairs): the spread of
    ln(B/A) per pair was 0.175 with runs one after the other, 0.12 in turns, 0.04 in turns with huge pages."""

    #: the runs of a pair (or group) alive together, timing in turns (:mod:`pytest_accel.turns`); else one by one
    in_turns: bool = True
    #: heaps on transparent huge pages, so a process's speed does not hang on where its memory landed
    huge_pages: bool = True

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The variables this mode adds to a run's environment ``base`` (a value the user set is kept)."""
        added: dict[str, str] = {}
        if self.in_turns and "OMP_WAIT_POLICY" not in base:
            # a run waiting for its turn must not keep its OpenMP threads spinning on the cores the other one times
            # on (measured here: the cpu matmul's spread per pair 0.21 with spinning, 0.04 without, 8 pairs each)
            added["OMP_WAIT_POLICY"] = "PASSIVE"
        if self.huge_pages:
            tunables = [part for part in base.get("GLIBC_TUNABLES", "").split(":") if part]
            if not any(part.startswith("glibc.malloc.hugetlb=") for part in tunables):
                tunables.append("glibc.malloc.hugetlb=1")
            added |= {"THP_MEM_ALLOC_ENABLE": "1", "GLIBC_TUNABLES": ":".join(tunables)}
        return added

    def describe(self) -> str:
        turns = (f"the runs of a pair alive together, timing in turns of {SLICE_SECONDS:g} s, OpenMP threads "
                 "passive while waiting (OMP_WAIT_POLICY=PASSIVE)" if self.in_turns else "one run after the other")
        pages = ("huge pages for the heaps (THP_MEM_ALLOC_ENABLE=1, GLIBC_TUNABLES=glibc.malloc.hugetlb=1)"
                 if self.huge_pages else "the default page size")
        return f"{turns}; {pages}"


MODE_FILE = "mode.txt"


def record_mode(workdir: Path, mode: RunMode) -> None:
    """Keep how the runs under ``workdir`` ran, for a later ``--reuse``."""
    from pytest_accel.baselines import atomic_write_text

    workdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(workdir / MODE_FILE, mode.describe() + "\n")


def recorded_mode(workdir: Path) -> str:
    """How the runs under ``workdir`` ran, as :func:`record_mode` kept it ("" when it did not)."""
    try:
        return (workdir / MODE_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def run_sides(a: Side, b: Side, pytest_args: Sequence[str], pairs: int, workdir: Path, *,
              timeout: float | None = None, progress: Any = None, mode: RunMode = RunMode()) -> list[RunOutcome]:
    """Both sides' runs in the balanced order, each a fresh pytest process with its own JSON report under
    ``workdir``; no baselines are read or written (a throwaway folder) and the runs confirm nothing themselves."""
    return run_schedule({"A": a, "B": b}, balanced_order(pairs), pytest_args, workdir, timeout=timeout,
                        progress=progress, mode=mode)


def run_schedule(sides: Mapping[str, Side], order: Sequence[tuple[int, str]], pytest_args: Sequence[str],
                 workdir: Path, *, timeout: float | None = None, progress: Any = None,
                 mode: RunMode = RunMode()) -> list[RunOutcome]:
    """The runs of ``order`` (group, side name), each a fresh pytest process with its own JSON report (and log)
    under ``workdir``, reading and writing no baselines (a throwaway folder) and confirming nothing themselves.
    In turns, the runs of one group start together and the group's first run takes the first turn; ``timeout``
    then bounds the group, scaled by its runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    planned = []
    for index, (group, name) in enumerate(order):
        side = sides[name]
        report = workdir / f"run-{index:03d}-pair-{group:02d}-{name}.json"
        report.unlink(missing_ok=True)
        argv = [side.python, "-m", "pytest", *pytest_args, *side.options, f"--accel-report={report}",
                f"--accel-baseline-dir={workdir / 'no-baselines'}", "--accel-missing-baseline=warn",
                "--accel-gate=none", "-p", "no:cacheprovider", "-q"]
        base = {**os.environ, **side.env}
        env = {**base, **mode.env(base), CONFIRMING_ENV: "1"}
        planned.append((group, name, Command(argv, env, report.with_suffix(".log")), report))
    outcomes = []
    batches = ([list(runs) for _, runs in itertools.groupby(planned, key=lambda run: run[0])] if mode.in_turns
               else [[run] for run in planned])
    done = 0
    for batch in batches:
        if progress is not None:
            names = ", ".join(name for _, name, _, _ in batch)
            progress(f"runs {done + 1}-{done + len(batch)}/{len(order)}: pair {batch[0][0] + 1}, {names}"
                     + (" in turns" if len(batch) > 1 else ""))
        group_timeout = None if timeout is None else timeout * len(batch)
        finished = run_in_turns([command for _, _, command, _ in batch], group_timeout)
        share = max(result.seconds for result in finished) / len(batch)  # the group's time, shared by its runs
        for (group, name, _, report), result in zip(batch, finished, strict=True):
            outcomes.append(RunOutcome(group, name, result.status, share, report))
        done += len(batch)
    return outcomes


@dataclass(frozen=True)
class SpeedFinding:
    key: MetricKey
    kind: str
    unit: str
    direction: str
    a_values: tuple[float, ...]
    b_values: tuple[float, ...]
    estimate: PairedEstimate
    adjusted_p: float
    verdict: str
    gates: bool
    #: the fewest pairs with which this comparison's level can be reached at all
    fewest_pairs: int = MIN_PAIRS

    @property
    def slowdown(self) -> float:
        """How much slower B is (0.05: 5%), from the estimate: B/A - 1 for times, A/B - 1 for rates."""
        ratio = self.estimate.ratio
        return ratio - 1 if self.direction == "lower" else 1 / ratio - 1


@dataclass(frozen=True)
class QualityFinding:
    key: MetricKey
    kind: str
    a_median: float
    b_median: float
    #: B's runs whose own verdict put this metric outside its bound (or below the reference)
    b_failed_runs: int
    runs: int
    verdict: str

    @property
    def gates(self) -> bool:
        return self.verdict != "held"


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    pairs: int
    alpha: float
    threshold: float
    speed: tuple[SpeedFinding, ...]
    quality: tuple[QualityFinding, ...]
    #: metrics one side has and the other does not, or that some run did not report
    unpaired: tuple[str, ...]
    seconds: dict[str, float]
    #: what the sides' reports say differs between their stacks: "onnxruntime 1.31.1 -> 1.32.0"
    differences: tuple[str, ...] = ()
    #: how the runs ran (:meth:`RunMode.describe`)
    mode: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if any(f.gates for f in self.speed) or any(f.gates for f in self.quality) else 0


def read_runs(outcomes: Sequence[RunOutcome]) -> dict[tuple[int, str], dict[MetricKey, tuple[Metric, str]]]:
    """Each run's metrics with its own verdict status; AbError naming the first run that wrote no report."""
    runs: dict[tuple[int, str], dict[MetricKey, tuple[Metric, str]]] = {}
    for outcome in outcomes:
        try:
            document = load_report(outcome.report)
        except ReportError as error:
            status = "could not start or timed out" if outcome.status is None else f"exit {outcome.status}"
            raise AbError(f"{outcome.side}'s run of pair {outcome.pair + 1} ({status}) wrote no report to compare: "
                          f"{error}") from None
        read, _ = read_metrics(document)
        runs[(outcome.pair, outcome.side)] = {
            (r.result["device"], r.result["suite"], r.result["test"], r.metric.name): (r.metric, r.entry["verdict"])
            for r in read}
    return runs


def is_timed(metric: Metric) -> bool:
    """Latency, throughput, first runs, energy: what a paired comparison of speed judges."""
    kind = KINDS.get(metric.kind)
    return kind is not None and kind.disturbed_by_load


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def compare(a: Side, b: Side, outcomes: Sequence[RunOutcome], pairs: int, alpha: float = DEFAULT_ALPHA,
            threshold: float = 0.0, power: float = DEFAULT_POWER) -> Comparison:
    """The comparison of the runs' reports (see the module's description)."""
    if not 0 < alpha < 1 or not 0 <= threshold < 1:
        raise AbError(f"alpha {alpha} must lie in (0, 1) and threshold {threshold} in [0, 1)")
    runs = read_runs(outcomes)
    keys = sorted({key for metrics in runs.values() for key in metrics})
    unpaired, timed, quality = [], [], []
    for key in keys:
        per_pair = [(runs[(p, "A")].get(key), runs[(p, "B")].get(key)) for p in range(pairs)]
        if any(x is None or y is None for x, y in per_pair):
            unpaired.append(" ".join((key[0], f"{key[1]}::{key[2]}", key[3])))
            continue
        pairs_of = [(x, y) for x, y in per_pair if x is not None and y is not None]
        metric = pairs_of[0][0][0]
        if is_timed(metric):
            timed.append((key, pairs_of))
        elif metric.kind in QUALITY_KINDS:
            quality.append((key, pairs_of))
    # one hypothesis per measurement: a latency and a throughput of the same rounds are the same ratios
    measurements = [(*key[:3], measurement_of(key[3], p[0][0][0].kind)) for key, p in timed]
    level = alpha / max(len(set(measurements)), 1)
    estimates = [paired_estimate([x[0].value for x, _ in p], [y[0].value for _, y in p], level, power)
                 for _, p in timed]
    adjusted = holm_per_measurement([e.p_value for e in estimates], measurements)
    speed = []
    for (key, pairs_of), estimate, p_adjusted in zip(timed, estimates, adjusted, strict=True):
        metric = pairs_of[0][0][0]
        slower_ratio = estimate.ratio > 1 if metric.direction == "lower" else estimate.ratio < 1
        verdict = "no difference detected" if p_adjusted >= alpha else ("slower" if slower_ratio else "faster")
        finding = SpeedFinding(key, metric.kind, metric.unit, metric.direction,
                               tuple(x[0].value for x, _ in pairs_of), tuple(y[0].value for _, y in pairs_of),
                               estimate, p_adjusted, verdict, False, fewest_pairs(level))
        speed.append(replace(finding, gates=verdict == "slower" and finding.slowdown >= threshold))
    return Comparison(a, b, pairs, alpha, threshold, tuple(speed),
                      tuple(_quality(key, pairs_of) for key, pairs_of in quality), tuple(unpaired),
                      {name: sum(o.seconds for o in outcomes if o.side == name) for name in ("A", "B")},
                      stack_differences(outcomes))


def _stack(report: Path) -> dict[str, str]:
    """The software a run's report names, and each device's runtime versions, as flat name -> version."""
    try:
        document = load_report(report)
    except ReportError:
        return {}
    stack = {str(k): str(v) for k, v in (document.get("software") or {}).items() if k != "platform"}
    for spec, device in (document.get("devices") or {}).items():
        runtime = device.get("runtime") if isinstance(device, Mapping) else None
        for name, version in (runtime or {}).items() if isinstance(runtime, Mapping) else ():
            stack.setdefault(str(name), str(version))
        if isinstance(device, Mapping) and device.get("driver_version"):
            stack[f"{spec} driver"] = str(device["driver_version"])
    return stack


def stack_differences(outcomes: Sequence[RunOutcome]) -> tuple[str, ...]:
    """What the first report of A and of B say differs: versions of the same software, and what one side has."""
    first = {side: next((o.report for o in outcomes if o.side == side), None) for side in ("A", "B")}
    if first["A"] is None or first["B"] is None:
        return ()
    a, b = _stack(first["A"]), _stack(first["B"])
    return tuple(f"{name} {a.get(name, '(none)')} -> {b.get(name, '(none)')}" for name in sorted({*a, *b})
                 if a.get(name) != b.get(name))


def _quality(key: MetricKey, pairs_of: Sequence[tuple[tuple[Metric, str], tuple[Metric, str]]]) -> QualityFinding:
    metric = pairs_of[0][0][0]
    a_median = _median([x[0].value for x, _ in pairs_of])
    b_median = _median([y[0].value for _, y in pairs_of])
    failed = sum(y[1] == "regression" for _, y in pairs_of)
    verdict = "held"
    if metric.kind == "accuracy":
        tolerance = KINDS["accuracy"].default_tolerance or 0.0
        drop = (a_median - b_median) / abs(a_median) if a_median else 0.0
        drop = drop if metric.direction == "higher" else -drop
        if drop > tolerance:
            verdict = f"less accurate: {drop:.1%} below A (tolerance {tolerance:g})"
    if failed:
        verdict = f"outside its bound in {failed} of {len(pairs_of)} runs of B"
    return QualityFinding(key, metric.kind, a_median, b_median, failed, len(pairs_of), verdict)


def run_python_version(python: str) -> str:
    """The interpreter's version line, to name a side in reports; AbError where it does not run."""
    try:
        done = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise AbError(f"interpreter {python!r} does not run: {error}") from None
    if done.returncode != 0:
        raise AbError(f"interpreter {python!r} does not run: exit {done.returncode}")
    return done.stdout.strip()

