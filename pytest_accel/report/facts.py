"""What every report of one run shares, worked out once: the baseline files no test used, the device speed-ups are
measured over, and each speed metric's speed-up over it.

The terminal summary, the Markdown summary, the scorecards and the JSON report of a run are handed one
:class:`RunFacts`; the HTML page, which renders a saved report, pairs its speed metrics with the same
:class:`Speedups`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

from pytest_accel.session import UnusedBaselines

if TYPE_CHECKING:
    from pytest_accel.peers import PeerFinding
    from pytest_accel.session import AccelSession


class SpeedKey(NamedTuple):
    """A speed metric apart from its device: a speed-up compares two devices on the same key."""

    suite: str
    #: the test with its parameters (``test_latency-fp16``): devices are compared at the same parameters
    test: str
    metric: str


class SpeedRow(NamedTuple):
    device: str
    key: SpeedKey
    value: float | None
    direction: str


def speedup_of(first: float | None, other: float | None, direction: str) -> float | None:
    """How many times faster ``other`` ran than ``first`` (rates compared directly, times inverted); None where a
    value is missing or not positive (a saved report holds a broken run's value as None)."""
    if first is None or other is None or first <= 0 or other <= 0:
        return None
    return other / first if direction == "higher" else first / other


def device_order(asked: Sequence[str], ran: Iterable[str]) -> list[str]:
    """The devices that produced results, in the order the run asked for them, then as they came (pytest-xdist's
    workers finish in any order)."""
    produced = list(dict.fromkeys(ran))
    return [device for device in dict.fromkeys([*asked, *produced]) if device in produced]


@dataclass(frozen=True)
class Speedups:
    """Every speed metric's speed-up over the run's first device (in the order asked) that measured speed: its
    ``reference``, where that device measured the same metric of the same test at the same parameters."""

    reference: str | None
    #: (device, key) -> the factor (None where a value was not positive); only pairs that have a reference value
    factors: dict[tuple[str, SpeedKey], float | None] = field(default_factory=dict)

    @classmethod
    def pair(cls, rows: Iterable[SpeedRow], asked: Sequence[str]) -> Speedups:
        rows = list(rows)
        order = device_order(asked, (row.device for row in rows))
        reference = order[0] if order else None
        base = {row.key: row for row in rows if row.device == reference}
        factors: dict[tuple[str, SpeedKey], float | None] = {}
        for row in rows:
            first = base.get(row.key)
            if first is not None and row.device != reference:
                factors[row.device, row.key] = speedup_of(first.value, row.value, first.direction)
        return cls(reference, factors)

    def paired(self, device: str, key: SpeedKey) -> bool:
        return (device, key) in self.factors

    def over(self, device: str, key: SpeedKey) -> float | None:
        """The speed-up of ``device`` on ``key`` over :attr:`reference`; None where unpaired or not positive."""
        return self.factors.get((device, key))


@dataclass(frozen=True)
class RunFacts:
    """Computed once at the end of a run (on pytest-xdist's controller, after the workers' records are merged)."""

    #: baseline files beside this run's that no test used (none deletable once they were pruned)
    unused_baselines: UnusedBaselines
    speedups: Speedups
    #: each device of a peer group against its peers (:mod:`pytest_accel.peers`); empty without such a group
    peers: tuple[PeerFinding, ...] = ()

    def peer_failures(self, gate: frozenset[str]) -> list[PeerFinding]:
        """The flagged peer findings whose kind the run gates."""
        return [finding for finding in self.peers if finding.flagged and finding.kind in gate]

    @classmethod
    def of(cls, session: AccelSession) -> RunFacts:
        rows = [SpeedRow(record.device.spec, SpeedKey(record.suite, record.test, verdict.metric.name),
                         verdict.metric.value, verdict.metric.direction)
                for record in session.records for verdict in record.verdicts if verdict.metric.kind_info.speed]
        unused = UnusedBaselines() if session.pruned else session.unused_baseline_files()
        return cls(unused, Speedups.pair(rows, session.options.device_specs), tuple(peer_findings(session)))


def peer_findings(session: AccelSession) -> list[PeerFinding]:
    """The run's devices against their peers (devices of the same key), on every speed and accuracy metric."""
    from pytest_accel.peers import PEER_KINDS, PeerValue, peer_check

    tolerance = session.options.peer_tolerance  # None: each kind's peer tolerance
    values = [PeerValue(record.device.spec, record.device.key, record.suite, record.test, verdict.metric.name,
                        verdict.metric.kind, verdict.metric.unit, verdict.metric.direction, verdict.metric.value,
                        tolerance)
              for record in session.records for verdict in record.verdicts
              if verdict.metric.kind in PEER_KINDS and record.device.available]
    return peer_check(values)
