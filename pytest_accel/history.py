"""A speed metric's run history: what one run adds to it (:func:`run_summary`), and how much of it is kept.

The verdict judges a run on this summary, the baseline's history keeps it and the report shows it: it is computed
once per metric and kept on the metric, so all three hold the same one, with one time stamp.
"""

from __future__ import annotations

import statistics
from typing import Any

from pytest_accel.environment import utc_now
from pytest_accel.metrics import Metric
from pytest_accel.stats import lower_quartile, run_spread

#: run-level summaries kept per speed metric: enough for a prediction interval, bounded so old runs age out
MAX_HISTORY = 20


def run_summary(metric: Metric) -> dict[str, Any]:
    """What one run contributes to a speed metric's history: its value, the calibration probe's median (for
    normalising), the within-run spread ((p90 - p10) / median of its rounds) and the number of rounds."""
    cached = metric.run_summary_cache
    if cached is not None:
        return dict(cached)
    summary: dict[str, Any] = {"value": metric.value}
    if metric.probe_samples:
        summary["probe"] = float(f"{statistics.median(metric.probe_samples):.6g}")
    spread = run_spread(metric.samples)
    if spread is not None and metric.samples:
        summary["spread"] = float(f"{spread:.4g}")
        summary["n"] = len(metric.samples)
        # the lower quartile of round times, of the workload and of the probe: interference only ever adds time,
        # so on a busy machine the quartile moves less than the median (the steadier series is picked per metric)
        summary["floor"] = float(f"{lower_quartile(metric.samples):.6g}")
        if metric.probe_samples and len(metric.probe_samples) >= 10:
            summary["probe_floor"] = float(f"{lower_quartile(metric.probe_samples):.6g}")
    summary["recorded_at"] = utc_now()
    metric.run_summary_cache = summary
    return dict(summary)
