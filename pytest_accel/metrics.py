"""What a workload measured: one :class:`Metric` per quantity, with its kind, unit and direction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: Kinds a metric can be. Each has its own tolerance meaning (see baselines.compare) and can be gated.
METRIC_KINDS: tuple[str, ...] = (
    "accuracy",  # relative drop allowed, higher is better (mAP, val accuracy)
    "parity",  # absolute bound on an error against a golden run, lower is better
    "convergence",  # absolute bound, e.g. the p-value of a slower-convergence test
    "latency",  # timed samples; significance test + relative slowdown
    "throughput",  # timed samples; significance test + relative drop
    "memory",  # relative growth of peak memory
    "startup",  # one-shot time (load + compile + first run): relative, loose
)
#: Recorded and reported, never checked (cosine similarity beside a checked error, say).
INFO_KIND = "info"

Direction = Literal["lower", "higher"]


@dataclass
class Metric:
    """One measured quantity.

    ``limit`` is an absolute bound that holds without any baseline (a parity error must stay under it);
    ``samples`` (seconds per round) and ``probe_samples`` (the calibration probe's seconds, interleaved) carry the
    raw data the latency significance test needs.
    """

    name: str
    value: float
    unit: str
    kind: str
    direction: Direction
    limit: float | None = None
    samples: list[float] | None = None
    probe_samples: list[float] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    #: a device-independent reference (e.g. the fp32 mAP in baselines/reference/) checked instead of the device's
    #: own baseline; ``expected_source`` names where it came from
    expected: float | None = None
    expected_source: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS and self.kind != INFO_KIND:
            raise ValueError(f"metric {self.name!r}: kind {self.kind!r} is not one of {', '.join(METRIC_KINDS)}, info")
        if self.direction not in ("lower", "higher"):
            raise ValueError(f"metric {self.name!r}: direction {self.direction!r} must be 'lower' or 'higher'")
        self.value = float(self.value)

    @property
    def is_timed(self) -> bool:
        return self.kind in ("latency", "throughput") and bool(self.samples)


def format_value(value: float | None, unit: str) -> str:
    """Human units: seconds become ms/us, bytes become MiB/GiB, ratios get 4 significant digits."""
    if value is None:
        return "-"
    if unit == "s":
        if abs(value) >= 1:
            return f"{value:.3g} s"
        if abs(value) >= 1e-3:
            return f"{value * 1e3:.3g} ms"
        return f"{value * 1e6:.3g} us"
    if unit == "B":
        if abs(value) >= 2**30:
            return f"{value / 2**30:.2f} GiB"
        return f"{value / 2**20:.1f} MiB"
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text
