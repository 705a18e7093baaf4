"""Tolerances: parsing them where they enter (marker, CLI, ini) and resolving the one that applies to a metric.

Precedence: marker > ``--accel-tolerance`` > the device's manifest > ini ``accel_tolerance_<kind>`` > built-in
default (the kind's relative default, or a bound metric's own limit); at each level a full metric name beats its
kind.
"""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from pytest_accel.errors import OptionError
from pytest_accel.metrics import DEFAULT_TOLERANCES, KINDS, METRIC_KINDS, Metric

MARKER_TOLERANCE = "accel_tolerance"
OPT_TOLERANCE = "--accel-tolerance"
INI_TOLERANCE_PREFIX = "accel_tolerance_"


def parse_tolerance_value(source: str, key: str, text: Any) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        raise OptionError(
            f"{source}: {key}={text!r} is not a number; expected a non-negative number such as 0.05"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise OptionError(f"{source}: {key}={text!r} must be a finite number >= 0")
    return value


def check_tolerance_range(source: str, key: str, kind: str, value: float) -> float:
    """``value`` if a tolerance of ``kind`` can mean it, else OptionError saying what it can be."""
    limit = KINDS[kind].tolerance_below
    if limit is not None and value >= limit:
        meaning = "a p-value bound" if KINDS[kind].judgement == "bound" else "a relative drop"
        raise OptionError(
            f"{source}: {key}={value:g} is no tolerance for {kind} metrics: as {meaning} it must be below {limit:g} "
            "(at 1 or more the check lets every value through)"
        )
    return value


def parse_floors(source: str, value: Any) -> dict[str, float]:
    """A manifest's ``[floors]``: shares of the datasheet's peak a device must reach, per share-of-peak metric (or
    ``share`` for all of them); they become those metrics' bounds."""
    if not isinstance(value, dict):
        raise OptionError(f"{source} must be a table of share-of-peak metric = share, e.g. "
                          '"ceiling.matmul.bf16.share_of_peak" = 0.6')
    floors = {}
    for key, raw in value.items():
        name = str(key)
        if not (name == "share" or name.endswith(".share_of_peak")):
            raise OptionError(f"{source}: {name!r} is not a share-of-peak metric (a name ending in .share_of_peak, "
                              "or share for all of them)")
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw < 1:
            raise OptionError(f"{source}: {name}={raw!r}: expected a share of the peak above 0 and below 1 (0.6: 60%)")
        floors[name] = float(raw)
    return floors


def check_tolerance_key(source: str, key: str) -> str:
    key = key.strip()
    if "." in key or key in METRIC_KINDS:
        return key
    raise OptionError(
        f"{source}: {key!r} is neither a metric kind ({', '.join(METRIC_KINDS)}) nor a metric name (which "
        "contains a dot, e.g. matmul.latency)"
    )


def parse_cli_tolerances(values: list[str]) -> dict[str, float]:
    result: dict[str, float] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep:
            raise OptionError(f"{OPT_TOLERANCE}={item!r}: expected KEY=VALUE, e.g. latency=0.2")
        key = check_tolerance_key(f"{OPT_TOLERANCE}={item}", key)
        value = parse_tolerance_value(OPT_TOLERANCE, key, text.strip())
        result[key] = check_tolerance_range(OPT_TOLERANCE, key, key, value) if key in KINDS else value
    return result


def marker_tolerances(item: pytest.Item) -> dict[str, float]:
    """Tolerances from ``accel_tolerance`` markers, the closest marker winning; validated."""
    merged: dict[str, float] = {}
    for marker in reversed(list(item.iter_markers(MARKER_TOLERANCE))):
        source = f"@pytest.mark.{MARKER_TOLERANCE} on {item.nodeid}"
        given: dict[str, Any] = {}
        for arg in marker.args:
            if not isinstance(arg, Mapping):
                raise OptionError(f"{source}: positional argument {arg!r} must be a dict of metric name -> tolerance")
            given.update(arg)
        given.update(marker.kwargs)
        for key, value in given.items():
            name = check_tolerance_key(source, str(key))
            number = parse_tolerance_value(source, name, value)
            merged[name] = check_tolerance_range(source, name, name, number) if name in KINDS else number
    return merged


def resolve_tolerance(
    metric: Metric,
    marker: Mapping[str, float],
    cli: Mapping[str, float],
    ini: Mapping[str, float],
    manifest: Mapping[str, float] | None = None,
    manifest_source: str = "manifest",
) -> tuple[float | None, str]:
    """The tolerance for ``metric`` and where it came from."""
    levels: list[tuple[Mapping[str, float], str]] = [
        (marker, f"marker {MARKER_TOLERANCE}"),
        (cli, OPT_TOLERANCE),
        (manifest or {}, manifest_source),
        (ini, f"ini {INI_TOLERANCE_PREFIX}{metric.kind}"),
    ]
    for values, source in levels:
        for key in (metric.name, metric.kind):
            if key in values:
                return check_tolerance_range(source, key, metric.kind, values[key]), source
    if metric.kind_info.judgement == "bound":
        return metric.limit, "the metric's limit" + (f": {metric.limit_reason}" if metric.limit_reason else "")
    return DEFAULT_TOLERANCES.get(metric.kind), "default"
