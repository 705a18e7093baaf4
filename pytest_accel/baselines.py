"""Baseline files: layout, schema, atomic writes, and the comparison of a metric with its stored value.

Layout: ``<baseline-dir>/<device-key>/<suite>/<test-name>.json``; device-independent references live under
``<baseline-dir>/reference/<suite>/<name>.json``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_accel.metrics import INFO_KIND, Metric, format_value
from pytest_accel.stats import timing_shift

SCHEMA = "pytest-accel/baseline"
SCHEMA_VERSION = 1
REFERENCE_FOLDER = "reference"
#: Stored timing samples are thinned to this many evenly spaced order statistics; enough for the rank test.
MAX_STORED_SAMPLES = 2000
#: A first run is one sample, so no significance test applies; differences under this are not judged.
STARTUP_SLACK_SECONDS = 0.1
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


class BaselineError(Exception):
    """A baseline file that cannot be used: unreadable, not JSON, wrong schema, or missing fields."""


def safe_name(text: str) -> str:
    return _SAFE_NAME.sub("_", text).strip("._") or "_"


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def atomic_write_json(path: Path, document: Any) -> None:
    """Write ``document`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8"
    )
    try:
        with handle:
            json.dump(document, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def thin_samples(samples: list[float]) -> list[float]:
    ordered = sorted(samples)
    if len(ordered) <= MAX_STORED_SAMPLES:
        return [float(f"{s:.6g}") for s in ordered]
    step = (len(ordered) - 1) / (MAX_STORED_SAMPLES - 1)
    return [float(f"{ordered[round(i * step)]:.6g}") for i in range(MAX_STORED_SAMPLES)]


def metric_record(metric: Metric, tolerance: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "value": metric.value,
        "unit": metric.unit,
        "kind": metric.kind,
        "direction": metric.direction,
        "tolerance": tolerance,
    }
    if metric.limit is not None:
        record["limit"] = metric.limit
    if metric.summary:
        record["summary"] = metric.summary
    if metric.samples:
        record["samples"] = thin_samples(metric.samples)
    if metric.probe_samples:
        record["probe_samples"] = thin_samples(metric.probe_samples)
    record["recorded_at"] = utc_now()
    return record


class BaselineStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, device_key: str, suite: str, test: str) -> Path:
        return self.root / safe_name(device_key) / safe_name(suite) / f"{safe_name(test)}.json"

    def reference_path(self, suite: str, name: str) -> Path:
        return self.root / REFERENCE_FOLDER / safe_name(suite) / f"{safe_name(name)}.json"

    def load(self, path: Path) -> dict[str, Any] | None:
        """The validated document at ``path``, or None when there is no file."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise BaselineError(f"baseline file {path} cannot be read: {error}") from error
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise BaselineError(
                f"baseline file {path} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
                "fix it, delete it, or re-record it with --accel-update-baselines"
            ) from error
        validate_document(path, document)
        return document

    def write(
        self,
        path: Path,
        metrics: dict[str, dict[str, Any]],
        header: dict[str, Any],
        existing: dict[str, Any] | None,
    ) -> None:
        merged = dict(existing["metrics"]) if existing else {}
        merged.update(metrics)
        document = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **header, "metrics": merged}
        atomic_write_json(path, document)


def validate_document(path: Path, document: Any) -> None:
    def bad(reason: str) -> BaselineError:
        return BaselineError(
            f"baseline file {path} {reason}; fix it, delete it, or re-record it with --accel-update-baselines"
        )

    if not isinstance(document, dict):
        raise bad(f"holds a JSON {type(document).__name__}, not an object")
    if document.get("schema") != SCHEMA:
        raise bad(f"has schema {document.get('schema')!r}, expected {SCHEMA!r}")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise bad(f"has schema_version {document.get('schema_version')!r}; this pytest-accel reads {SCHEMA_VERSION}")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        raise bad("has no 'metrics' object")
    for name, record in metrics.items():
        if not isinstance(record, dict):
            raise bad(f"metric {name!r} is not an object")
        for key in ("value", "unit", "kind", "direction"):
            if key not in record:
                raise bad(f"metric {name!r} lacks {key!r}")
        if not isinstance(record["value"], (int, float)) or isinstance(record["value"], bool):
            raise bad(f"metric {name!r} has non-numeric value {record['value']!r}")
        if record["direction"] not in ("lower", "higher"):
            raise bad(f"metric {name!r} has direction {record['direction']!r}, expected 'lower' or 'higher'")
        samples = record.get("samples")
        if samples is not None and not (
            isinstance(samples, list) and all(isinstance(s, (int, float)) and s >= 0 for s in samples)
        ):
            raise bad(f"metric {name!r} has malformed 'samples' (expected a list of non-negative numbers)")


# --- comparison -----------------------------------------------------------------------------------------------

#: kinds whose tolerance is an absolute bound on the value itself (an error, a p-value), not a change from a baseline
BOUND_KINDS = ("parity", "convergence")
PASSING = ("pass", "improved", "faster", "noise", "missing", "recorded", "updated", "info")


@dataclass
class Verdict:
    metric: Metric
    status: str  # one of PASSING, or "regression"
    baseline_value: float | None
    tolerance: float | None
    tolerance_source: str
    detail: str
    gated: bool = True

    @property
    def regressed(self) -> bool:
        return self.status == "regression"

    @property
    def fails_test(self) -> bool:
        return self.regressed and self.gated

    @property
    def delta(self) -> float | None:
        """Relative change of the value against the baseline (+0.05 = 5% higher)."""
        if self.baseline_value in (None, 0):
            return None
        return self.metric.value / self.baseline_value - 1

    @property
    def label(self) -> str:
        if self.status == "regression" and not self.gated:
            return "regression (not gated)"
        return {"faster": "faster?", "noise": "pass (noise)"}.get(self.status, self.status)


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def compare(
    metric: Metric,
    baseline: dict[str, Any] | None,
    tolerance: float | None,
    tolerance_source: str,
    *,
    alpha: float,
    latency_basis: str,
) -> Verdict:
    """Judge one metric; ``tolerance`` is already resolved (marker > CLI > ini > default)."""
    base_value = float(baseline["value"]) if baseline is not None else None

    def verdict(status: str, detail: str) -> Verdict:
        return Verdict(metric, status, base_value, tolerance, tolerance_source, detail)

    if metric.kind == INFO_KIND:
        return verdict("info", "reported only")
    if metric.kind in BOUND_KINDS:
        limit = tolerance
        if limit is None:
            return verdict("info", f"no limit given for this {metric.kind} metric: reported only")
        within = metric.value <= limit if metric.direction == "lower" else metric.value >= limit
        return verdict("pass" if within else "regression", "within the bound" if within else "outside the bound")
    if baseline is None:
        return verdict("missing", "no baseline")
    assert tolerance is not None and base_value is not None

    if metric.is_timed and baseline.get("samples"):
        return _compare_timed(metric, baseline, tolerance, verdict, alpha, latency_basis)

    if base_value == 0:
        worse = metric.value != 0 and ((metric.value > 0) == (metric.direction == "lower"))
        return verdict("regression" if worse else "pass", "baseline is 0")
    ratio = metric.value / base_value
    if metric.direction == "higher":
        worse, better = ratio < 1 - tolerance, ratio > 1 + tolerance
    else:
        worse, better = ratio > 1 + tolerance, ratio < 1 - tolerance
    if worse and metric.kind == "startup" and abs(metric.value - base_value) < STARTUP_SLACK_SECONDS:
        return verdict("noise", f"beyond the tolerance but by less than {STARTUP_SLACK_SECONDS:g} s, which a single "
                                "sample cannot tell from scheduling noise")
    against = "reference" if metric.expected is not None else "baseline"
    if worse:
        return verdict("regression", f"worse than the {against} beyond the tolerance")
    if better:
        return verdict("improved", f"better than the {against} beyond the tolerance; update it if this is real")
    return verdict("pass", "within the tolerance")


def _compare_timed(
    metric: Metric, baseline: dict[str, Any], tolerance: float, verdict: Any, alpha: float, basis: str
) -> Verdict:
    """Latency and throughput both come from round times; 'slower' means longer rounds for either."""
    shift = timing_shift(
        metric.samples or [], baseline["samples"], metric.probe_samples, baseline.get("probe_samples")
    )
    normalised = shift.normalised_ratio
    text = f"median time {_percent(shift.ratio - 1)}"
    if normalised is not None:
        text += f" (probe-normalised {_percent(normalised - 1)})"
    if basis == "absolute" or normalised is None:
        ratios = [shift.ratio]
    elif basis == "normalised":
        ratios = [normalised]
    else:
        ratios = [shift.ratio, normalised]
    limit = 1 + tolerance
    if shift.p_slower < alpha and all(r > limit for r in ratios):
        return verdict(
            "regression",
            f"{text}, slower beyond the tolerance of {tolerance:.3g}; Mann-Whitney p={shift.p_slower:.2g} < {alpha:g}",
        )
    if shift.p_slower < alpha and shift.ratio > limit:
        return verdict("noise", f"{text}: the calibration probe slowed as much, so the machine, not the workload")
    if shift.p_faster < alpha and all(r < 1 / limit for r in ratios):
        return verdict(
            "faster",
            f"{text}: faster beyond the tolerance (p={shift.p_faster:.2g}); check the work is still done, then "
            "update the baseline",
        )
    return verdict("pass", f"{text}, within {tolerance:.3g} or not significant at {alpha:g}")


def describe_verdict(v: Verdict) -> str:
    m = v.metric
    expected = format_value(v.baseline_value, m.unit) if v.baseline_value is not None else "-"
    if m.kind in BOUND_KINDS and v.tolerance is not None:
        expected = f"{'<=' if m.direction == 'lower' else '>='} {v.tolerance:.4g} ({v.tolerance_source})"
    if m.expected is not None and m.expected_source:
        expected += f" (reference {m.expected_source})"
    parts = [f"obtained {format_value(m.value, m.unit)}", f"expected {expected}"]
    if v.delta is not None and m.kind not in BOUND_KINDS:
        parts.append(f"diff {_percent(v.delta)}")
    if v.tolerance is not None and m.kind not in BOUND_KINDS:
        parts.append(f"tolerance {v.tolerance:.3g} ({v.tolerance_source})")
    return f"{m.name} [{m.kind}]: " + ", ".join(parts) + f"; {v.detail}"

