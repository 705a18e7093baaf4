"""``pytest-accel ab-power``: what an A/B comparison can see on this runner, measured by the runner itself.

Three stacks run the chosen tests in groups of fresh processes: ``A``, ``A2`` (the same stack again) and ``B`` (the
same stack with ``--accel-inject-slowdown``: real work proportional to every model call, as the gate self-check
injects it). The order inside a group cycles through all six orders of the three, so a drift over the check falls on
each stack alike. From ``groups`` groups, comparisons of ``k`` pairs are drawn again and again (subsamples of the
groups, without replacement) and judged exactly as ``pytest-accel ab`` judges (signed-rank test per timed metric,
Holm over all of them):

- **A against A2**: the share of comparisons that flag any metric — the false-alarm rate, to be at most ``alpha``;
- **A2 against B**: per metric, the share that call B slower — the power at the injected slowdown, measured;
- **A against A2 with B's values scaled** by ``1 + change`` (a rate divided by it) for each of ``changes``: the power
  at other slowdowns, from the measured pairs under a pure-shift model. The measured column at the injected slowdown
  is the check of that model.

Subsamples of ``k`` from ``groups`` overlap more as ``k`` nears ``groups``: rows with ``k`` above half the groups
are marked, their rates lean optimistic.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from pytest_accel.ab import AbError, MetricKey, RunOutcome, is_timed, read_runs
from pytest_accel.metrics import measurement_of
from pytest_accel.paired import holm_per_measurement, signed_rank_p_value
from pytest_accel.report.document import ReportError, load_report

ARMS = ("A", "A2", "B")
DEFAULT_CHANGES = (0.02, 0.05, 0.10)
DEFAULT_RESAMPLES = 400
#: the comparison sizes tried by default (those up to the number of groups)
DEFAULT_KS = (6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)


def power_order(groups: int) -> list[tuple[int, str]]:
    """The runs of ``groups`` groups of A, A2 and B, each group in the next of the six orders of the three."""
    if groups < 1:
        raise ValueError(f"groups must be at least 1, got {groups}")
    orders = list(itertools.permutations(ARMS))
    return [(group, arm) for group in range(groups) for arm in orders[group % len(orders)]]


@dataclass(frozen=True)
class MetricSeries:
    key: MetricKey
    direction: str
    #: one value per group for each arm
    values: dict[str, np.ndarray]
    kind: str = ""

    @property
    def measurement(self) -> tuple[str, str, str, str]:
        """What it was measured from: a latency and a throughput of the same rounds are one measurement."""
        return (*self.key[:3], measurement_of(self.key[3], self.kind))


@dataclass(frozen=True)
class PowerRow:
    pairs: int
    subsamples: int
    #: share of A/A comparisons flagging any metric
    false_alarms: float
    #: per metric: share of A2/B comparisons that call B slower (the injected slowdown, measured)
    measured: dict[MetricKey, float]
    #: per change, per metric: share of shifted A/A2 comparisons that call B slower
    shifted: dict[float, dict[MetricKey, float]]
    #: more than half the groups in each subsample: the rates lean optimistic
    overlapping: bool
    #: seconds an A/B comparison of this many pairs takes here (two runs a pair)
    seconds: float


@dataclass(frozen=True)
class PowerCheck:
    groups: int
    slowdown: float
    alpha: float
    changes: tuple[float, ...]
    metrics: tuple[MetricSeries, ...]
    rows: tuple[PowerRow, ...]
    seconds_per_run: float
    unpaired: tuple[str, ...]
    #: how the runs ran (:meth:`pytest_accel.ab.RunMode.describe`)
    mode: str = ""

    def smallest_pairs(self, change: float, power: float = 0.95) -> dict[MetricKey, int | None]:
        """Per metric, the fewest pairs whose rows reach ``power`` at ``change`` (the measured column at the
        injected slowdown, else the shifted one), without a smaller power at a larger k after it; rows of a single
        comparison (all the groups) are no rate and count for nothing."""
        found: dict[MetricKey, int | None] = {}
        for series in self.metrics:
            found[series.key] = None
            for row in reversed([row for row in self.rows if row.subsamples > 1]):  # one comparison is no rate
                rate = row.measured[series.key] if math.isclose(change, self.slowdown) else \
                    row.shifted.get(change, {}).get(series.key, 0.0)
                if rate < power:
                    break
                found[series.key] = row.pairs
        return found


def seconds_per_run(outcomes: Sequence[RunOutcome]) -> float:
    """The runs' mean duration: as timed, or for reports read again (``--reuse``), from their creation times."""
    timed = [o.seconds for o in outcomes if o.seconds > 0]
    if timed:
        return sum(timed) / len(timed)
    from datetime import datetime

    stamps = []
    for outcome in outcomes:
        try:
            stamps.append(datetime.fromisoformat(str(load_report(outcome.report)["created_at"]).replace("Z", "+00:00")))
        except (ReportError, KeyError, ValueError):
            continue
    if len(stamps) < 2:
        return 0.0
    return (max(stamps) - min(stamps)).total_seconds() / (len(stamps) - 1)


def collect(outcomes: Sequence[RunOutcome], groups: int) -> tuple[list[MetricSeries], list[str]]:
    """Each timed metric's values per arm and group; the ones some run did not report, named."""
    runs = read_runs(outcomes)
    keys = sorted({key for metrics in runs.values() for key in metrics})
    series, unpaired = [], []
    for key in keys:
        cells = [[runs[(group, arm)].get(key) for group in range(groups)] for arm in ARMS]
        first = next(cell for row in cells for cell in row if cell is not None)[0]
        if not is_timed(first):
            continue
        if any(cell is None for row in cells for cell in row):
            unpaired.append(" ".join((key[0], f"{key[1]}::{key[2]}", key[3])))
            continue
        values = {arm: np.array([cell[0].value for cell in row if cell is not None]) for arm, row in
                  zip(ARMS, cells, strict=True)}
        if any(not np.all(np.isfinite(v) & (v > 0)) for v in values.values()):
            unpaired.append(" ".join((key[0], f"{key[1]}::{key[2]}", key[3])) + " (a value not above 0)")
            continue
        series.append(MetricSeries(key, first.direction, values, first.kind))
    return series, unpaired


def _slower_flags(logs: np.ndarray, directions: Sequence[str], alpha: float,
                  measurements: Sequence[Hashable]) -> list[bool]:
    """Per metric (rows of ``logs``: ln(B/A) per pair), whether the comparison calls B slower after Holm over the
    distinct measurements (as ``pytest-accel ab`` judges)."""
    p_values = [signed_rank_p_value(list(row)) for row in logs]
    adjusted = holm_per_measurement(p_values, measurements)
    flags = []
    for row, direction, p in zip(logs, directions, adjusted, strict=True):
        centre = float(np.median(row))
        slower = centre > 0 if direction == "lower" else centre < 0
        flags.append(p < alpha and slower)
    return flags


def _any_flag(logs: np.ndarray, alpha: float, measurements: Sequence[Hashable]) -> bool:
    return min(holm_per_measurement([signed_rank_p_value(list(row)) for row in logs], measurements),
               default=1.0) < alpha


def analyse(series: Sequence[MetricSeries], groups: int, slowdown: float, alpha: float,
            changes: Sequence[float] = DEFAULT_CHANGES, ks: Sequence[int] = DEFAULT_KS,
            resamples: int = DEFAULT_RESAMPLES, seconds_per_run: float = 0.0, seed: int = 0) -> list[PowerRow]:
    """The rows of the power table (see the module's description)."""
    if not series:
        raise AbError("no timed metric was reported by every run: nothing to measure the power of")
    rng = np.random.default_rng(seed)
    log_aa = np.array([np.log(s.values["A2"] / s.values["A"]) for s in series])
    log_ab = np.array([np.log(s.values["B"] / s.values["A2"]) for s in series])
    directions = [s.direction for s in series]
    measurements = [s.measurement for s in series]
    sign = np.array([1.0 if d == "lower" else -1.0 for d in directions])[:, None]
    rows = []
    for k in sorted({*(k for k in ks if 3 <= k <= groups), groups}):
        draws = 1 if k == groups else min(resamples, math.comb(groups, k))
        false_alarms = 0
        measured = np.zeros(len(series))
        shifted = {change: np.zeros(len(series)) for change in changes}
        for _ in range(draws):
            chosen = rng.choice(groups, size=k, replace=False)
            aa = log_aa[:, chosen]
            false_alarms += _any_flag(aa, alpha, measurements)
            measured += _slower_flags(log_ab[:, chosen], directions, alpha, measurements)
            for change in changes:
                shifted[change] += _slower_flags(aa + sign * math.log1p(change), directions, alpha, measurements)
        keys = [s.key for s in series]
        rows.append(PowerRow(
            k, draws, false_alarms / draws, dict(zip(keys, (measured / draws).tolist(), strict=True)),
            {change: dict(zip(keys, (counts / draws).tolist(), strict=True)) for change, counts in shifted.items()},
            2 * k > groups, 2 * k * seconds_per_run))
    return rows


def to_dict(check: PowerCheck) -> dict[str, Any]:
    def name(key: MetricKey) -> str:
        return f"{key[0]} {key[1]}::{key[2]} {key[3]}"

    return {
        "schema": "pytest-accel/ab-power", "schema_version": 1, "groups": check.groups,
        "injected_slowdown": check.slowdown, "alpha": check.alpha, "changes": list(check.changes),
        "seconds_per_run": check.seconds_per_run, "unpaired": list(check.unpaired), "mode": check.mode,
        "spread": {name(s.key): {"a_a": float(np.std(np.log(s.values["A2"] / s.values["A"]), ddof=1)),
                                 "a_b": float(np.std(np.log(s.values["B"] / s.values["A2"]), ddof=1))}
                   for s in check.metrics},
        "rows": [{"pairs": r.pairs, "subsamples": r.subsamples, "false_alarms": r.false_alarms,
                  "overlapping": r.overlapping, "seconds": r.seconds,
                  "measured": {name(k): v for k, v in r.measured.items()},
                  "shifted": {f"{c:g}": {name(k): v for k, v in per.items()} for c, per in r.shifted.items()}}
                 for r in check.rows],
        "smallest_pairs": {f"{c:g}": {name(k): v for k, v in check.smallest_pairs(c).items()}
                           for c in sorted({*check.changes, check.slowdown})},
    }


def markdown(check: PowerCheck) -> str:
    """The power table: one row per metric, one column per comparison size (pairs, with the minutes it takes)."""
    def short(key: MetricKey) -> str:
        return f"`{key[0]}` {key[2].split('[')[0]} {key[3]}"

    changes = ", ".join(f"{c:.0%}" for c in check.changes)
    sizes = [f"{row.pairs}{'*' if row.overlapping else ''} pairs ({row.seconds / 60:.0f} min)" for row in check.rows]
    header = ["metric", "sd ln(A2/A)", *sizes]
    lines = [f"### A/B power on this runner: {check.groups} groups, {check.slowdown:.0%} injected, "
             f"family-wise alpha {check.alpha:g}", "", f"How the runs ran: {check.mode or 'not recorded'}.", "",
             "Each cell: the share of comparisons of that many pairs calling B slower at the injected "
             f"{check.slowdown:.0%} (measured), then at {changes} (shift model). `*`: more than half the groups in "
             "each subsample, leaning optimistic.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
             "| A/A: any metric flagged | | " + " | ".join(f"{row.false_alarms:.1%}" for row in check.rows) + " |"]
    for series in check.metrics:
        spread = float(np.std(np.log(series.values["A2"] / series.values["A"]), ddof=1))
        cells = [f"{row.measured[series.key]:.0%} ("
                 + " / ".join(f"{row.shifted[c][series.key]:.0%}" for c in check.changes) + ")"
                 for row in check.rows]
        lines.append("| " + " | ".join([short(series.key), f"{spread:.3f}", *cells]) + " |")
    smallest = check.smallest_pairs(check.slowdown)
    caught = [f"{short(key)}: {pairs}" for key, pairs in smallest.items() if pairs is not None]
    lines += ["", f"Smallest number of pairs catching {check.slowdown:.0%} in 95% of comparisons: "
              + ("; ".join(caught) if caught else f"none within {check.groups} pairs") + "."]
    if check.unpaired:
        lines += ["", f"Not measured (missing from some run): {', '.join(check.unpaired)}"]
    return "\n".join(lines) + "\n"
