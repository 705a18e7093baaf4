"""Identical devices of one run as each other's baseline: a device slower (or less accurate) than its peers.

A node with eight GPUs of one model runs the same tests on each. Noise the node shares (its host, its drivers, its
state today) moves all of them; a faulty or throttled device moves alone. So every device of a *peer group* (the
run's devices with the same device key: the same model, the same host facts) is compared with the others on each
speed and accuracy metric of each test, without any history:

- how much worse than the peers' median it is (``cuda:3: model latency +14% against the median of its 7 peers``);
- whether that is beyond the peers' own spread: the device's value against a prediction interval of the peers'
  (log) values, a one-sided t test with ``peers - 1`` degrees of freedom, Holm over every device and measurement of
  the run (a latency and the throughput of the same rounds are one), so a run where no device is off flags none in
  ``1 - alpha`` of runs whatever the node's noise;
- a device is flagged when it is both worse than its peers by at least the tolerance (:data:`PEER_TOLERANCES`)
  and significantly so.

The check needs three devices of a key (a device and two peers) and a positive value on each.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

from pytest_accel.metrics import KINDS, measurement_of
from pytest_accel.paired import holm_per_measurement

#: kinds compared between peers
PEER_KINDS = ("latency", "throughput", "accuracy")
#: a device and at least two peers: one peer is no spread
MIN_GROUP = 3
DEFAULT_PEER_ALPHA = 0.01
#: how much worse than its peers a device may be before it is flagged, per kind (``--accel-peer-tolerance`` sets one
#: for all). Tighter than the history's (devices of one run share the host, the software and the moment, where a
#: history spans days and upgrades) and below the smallest slowdown the check is meant to catch at least half the
#: time: a device exactly at the tolerance is caught at most half the time, its estimate falling on either side.
PEER_TOLERANCES = {"latency": 0.03, "throughput": 0.03, "accuracy": 0.01}


@dataclass(frozen=True)
class PeerValue:
    device: str
    key: str
    suite: str
    test: str
    metric: str
    kind: str
    unit: str
    direction: str
    value: float
    tolerance: float | None = None


@dataclass(frozen=True, kw_only=True)
class PeerFinding(PeerValue):
    """One device's value against its peers'. ``tolerance`` is the one applied: the value's, else its kind's."""

    tolerance: float
    peer_median: float
    peers: int
    #: how much worse than the peers' median (0.14: 14% slower, or 14% less accurate)
    worse_by: float
    #: the peers' own spread: the standard deviation of their log values
    peer_spread: float
    p_value: float
    adjusted_p: float
    flagged: bool

    def message(self) -> str:
        what = "slower" if KINDS[self.kind].speed else "worse"
        sign = "+" if self.worse_by >= 0 else ""
        return (f"{self.device}: {self.metric} {sign}{self.worse_by:.1%} ({what}) against the median of its "
                f"{self.peers} peers (their spread {self.peer_spread:.1%}, p {self.adjusted_p:.2g} after Holm, "
                f"tolerance {self.tolerance:.0%})")


def _oriented(value: float, direction: str) -> float:
    """The log value, larger when worse."""
    return math.log(value) if direction == "lower" else -math.log(value)


def peer_check(values: Iterable[PeerValue], alpha: float = DEFAULT_PEER_ALPHA,
               tolerances: Mapping[str, float] = PEER_TOLERANCES) -> list[PeerFinding]:
    """Every device of every peer group against its peers, each metric; Holm over all of them."""
    groups: dict[tuple[str, str, str, str], list[PeerValue]] = {}
    for value in values:
        if value.kind in PEER_KINDS and value.value > 0 and math.isfinite(value.value):
            groups.setdefault((value.key, value.suite, value.test, value.metric), []).append(value)
    raw: list[tuple[PeerValue, float, float, float, float, int]] = []
    for members in groups.values():
        by_device = {member.device: member for member in members}  # one value a device
        if len(by_device) < MIN_GROUP:
            continue
        for device, member in by_device.items():
            peers = [other for name, other in by_device.items() if name != device]
            logs = [_oriented(peer.value, peer.direction) for peer in peers]
            own = _oriented(member.value, member.direction)
            center = statistics.median(logs)
            spread = statistics.stdev(logs)
            p = _prediction_p(own, logs, spread)
            raw.append((member, math.exp(own - center) - 1, math.exp(center if member.direction == "lower"
                                                                       else -center), spread, p, len(peers)))
    # one hypothesis per device and measurement: a latency and the throughput of the same rounds are the same ratio
    measurements = [(m.device, m.key, m.suite, m.test, measurement_of(m.metric, m.kind)) for m, *_ in raw]
    adjusted = holm_per_measurement([p for *_, p, _ in raw], measurements)
    findings = []
    for (member, worse_by, median, spread, p, count), adjusted_p in zip(raw, adjusted, strict=True):
        limit = member.tolerance if member.tolerance is not None else tolerances[member.kind]
        findings.append(PeerFinding(**{**vars(member), "tolerance": limit}, peer_median=median, peers=count,
                                    worse_by=worse_by, peer_spread=spread, p_value=p, adjusted_p=adjusted_p,
                                    flagged=worse_by >= limit and adjusted_p < alpha))
    return findings


def _prediction_p(own: float, peers: Sequence[float], spread: float) -> float:
    """One-sided p of ``own`` being as far above the peers as it is, were it one more draw of theirs: Student's t
    of a new observation against the peers' mean, ``len(peers) - 1`` degrees of freedom."""
    from scipy import stats as scipy_stats  # here: importing the plugin must not import scipy

    mean = statistics.fmean(peers)
    if spread == 0:
        return 0.0 if own > mean else 1.0
    t = (own - mean) / (spread * math.sqrt(1 + 1 / len(peers)))
    return float(scipy_stats.t.sf(t, df=len(peers) - 1))


def spread_by_group(findings: Sequence[PeerFinding]) -> dict[tuple[str, str, str, str], tuple[int, float, float]]:
    """Per (key, suite, test, metric): the devices, and the least and most worse-by among them (the peer spread a
    report shows)."""
    out: dict[tuple[str, str, str, str], tuple[int, float, float]] = {}
    for finding in findings:
        group = (finding.key, finding.suite, finding.test, finding.metric)
        count, low, high = out.get(group, (0, math.inf, -math.inf))
        out[group] = (count + 1, min(low, finding.worse_by), max(high, finding.worse_by))
    return out


def summary_lines(findings: Sequence[PeerFinding], gate: frozenset[str], *, every_group: bool = False) -> list[str]:
    """What the terminal and Markdown summaries say: the groups compared, every flagged device with its evidence
    (``FAILED`` where the kind is gated), and with ``every_group`` each group's spread."""
    if not findings:
        return []
    groups = spread_by_group(findings)
    devices = {(f.key, f.device) for f in findings}
    flagged = [f for f in findings if f.flagged]
    lines = [f"peers: {len(devices)} devices of {len({key for key, _ in devices})} key(s) compared with each "
             f"other on {len(groups)} metric(s): {len(flagged)} flagged"]
    for finding in sorted(flagged, key=lambda f: -f.worse_by):
        lines.append(f"  {'FAILED' if finding.kind in gate else 'flagged (not gated)'} {finding.suite}::"
                     f"{finding.test} {finding.message()}")
    if every_group:
        for (key, suite, test, metric), (count, low, high) in sorted(groups.items()):
            lines.append(f"  {key} {suite}::{test} {metric}: {count} devices, from {low:+.1%} to {high:+.1%} "
                         "against their peers' median")
    return lines


def to_dicts(findings: Sequence[PeerFinding]) -> list[dict[str, object]]:
    return [asdict(finding) for finding in findings]
