"""Each device of a report against its datasheet: the roofline (peak compute and bandwidth, measured ceilings,
workloads placed by their intensity) and the share-of-peak table — read from a saved report alone, so the HTML page,
the scorecard and the fleet report show the same numbers.

The bandwidth roof is the datasheet's (or the host's, where it lists its memory) and, where neither gives one, the
best STREAM kernel measured in the same run, said so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pytest_accel.report.document import as_mapping, as_number, metric_entries


@dataclass(frozen=True)
class Point:
    name: str
    precision: str
    intensity: float
    tflops: float


@dataclass
class Roofline:
    device: str
    origin: str = "none"
    #: precision -> peak TFLOPS (datasheet or host estimate)
    peaks: dict[str, float] = field(default_factory=dict)
    bandwidth_gbs: float | None = None
    bandwidth_source: str = ""
    #: dtype -> measured matmul ceiling (TFLOPS); kernel -> measured STREAM GB/s
    matmul: dict[str, float] = field(default_factory=dict)
    stream: dict[str, float] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    #: rows of the share-of-peak table: what, achieved, peak, unit, share, source, verdict
    shares: list[dict[str, Any]] = field(default_factory=list)

    @property
    def roof_bandwidth(self) -> tuple[float | None, str]:
        if self.bandwidth_gbs:
            return self.bandwidth_gbs, self.bandwidth_source
        if self.stream:
            kernel, best = max(self.stream.items(), key=lambda item: item[1])
            return best, f"measured (STREAM {kernel}, this run)"
        return None, ""

    def place(self, point: Point) -> dict[str, Any]:
        """Where ``point`` sits: the roof at its intensity, what bounds it there and its share of that roof."""
        peak = self.peaks.get(point.precision) or self.peaks.get("fp32")
        bandwidth, source = self.roof_bandwidth
        placed: dict[str, Any] = {"name": point.name, "precision": point.precision, "intensity": point.intensity,
                                  "tflops": point.tflops, "bandwidth_source": source}
        if peak is None or bandwidth is None:
            placed["bound"] = "unknown (no " + ("compute peak" if peak is None else "bandwidth") + ")"
            return placed
        roof = min(peak, bandwidth * 1e9 * point.intensity / 1e12)
        ridge = peak * 1e12 / (bandwidth * 1e9)
        placed |= {"roof_tflops": roof, "ridge_intensity": ridge, "share_of_roof": point.tflops / roof,
                   "bound": "memory" if point.intensity < ridge else "compute"}
        return placed

    def to_dict(self) -> dict[str, Any]:
        bandwidth, source = self.roof_bandwidth
        return {"device": self.device, "origin": self.origin, "peak_tflops": self.peaks,
                "bandwidth_gbs": bandwidth, "bandwidth_source": source, "matmul_tflops": self.matmul,
                "stream_gbs": self.stream, "shares": self.shares, "placed": [self.place(p) for p in self.points]}


def rooflines(report: Mapping[str, Any]) -> dict[str, Roofline]:
    """One :class:`Roofline` per device that measured a ceiling or a roofline point, in the report's device order."""
    datasheet = as_mapping(report.get("datasheet"))
    found: dict[str, Roofline] = {}
    for result, metric in metric_entries(report):
        name = str(metric.get("name", ""))
        summary = as_mapping(metric.get("summary"))
        value = as_number(metric.get("value"))
        device = str(result["device"])
        is_ceiling = name.startswith("ceiling.") or bool(summary.get("roofline")) or metric.get("kind") == "share"
        if value is None or not is_ceiling:
            continue
        line = found.get(device)
        if line is None:
            line = found[device] = _from_datasheet(device, as_mapping(datasheet.get(device)))
        parts = name.split(".")
        if name.startswith("ceiling.matmul.") and name.endswith(".tflops"):
            line.matmul[parts[2]] = value
        elif name.startswith("ceiling.stream.") and name.endswith(".gbs"):
            line.stream[parts[2]] = value
        elif summary.get("roofline") and as_number(summary.get("intensity")):
            line.points.append(Point(name.removesuffix(".achieved_tflops"), str(summary.get("precision", "fp32")),
                                     float(summary["intensity"]), value))
        if metric.get("kind") == "share":
            line.shares.append({"what": name.removesuffix(".share_of_peak"), "achieved": summary.get("achieved"),
                                "peak": summary.get("peak"), "unit": summary.get("unit", ""),
                                "precision": summary.get("precision", ""), "share": value,
                                "source": summary.get("peak_source", ""), "floor": metric.get("tolerance"),
                                "verdict": metric.get("verdict", ""), "estimated": bool(summary.get("estimated"))})
    return found


def _from_datasheet(device: str, entry: Mapping[str, Any]) -> Roofline:
    line = Roofline(device, str(entry.get("origin", "none")))
    peaks = as_mapping(entry.get("peak_tflops"))
    line.peaks = {str(p): float(v) for p, v in peaks.items() if as_number(v)}
    values = as_mapping(entry.get("values"))
    bandwidth = as_number(values.get("memory_bandwidth_gbs"))
    if bandwidth:
        sources = as_mapping(entry.get("sources"))
        estimate = as_mapping(entry.get("estimate"))
        line.bandwidth_gbs = bandwidth
        line.bandwidth_source = str(sources.get("memory_bandwidth_gbs") or estimate.get("bandwidth_source")
                                    or "datasheet")
    return line


def against_datasheet(merged: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The buyers' table: per system the datasheet's (or the estimate's) peaks, bandwidth, power and price beside
    what this fleet measured — the matmul and STREAM ceilings with their shares, where the detector sits on the
    roofline, its images per joule and per dollar."""
    lines = rooflines(merged)
    values: dict[str, dict[str, float]] = {}
    for result in merged["results"]:
        for entry in result["metrics"]:
            name = str(entry.get("name"))
            if name.endswith(("_tdp_estimate", "per_s_per_kusd", "usd_per_million", "inferences_per_joule")) and \
                    isinstance(entry.get("value"), (int, float)):
                values.setdefault(result["device"], {})[name.rsplit(".", 1)[-1]] = float(entry["value"])
    header = ["system", "peak from", "peak TFLOPS", "bandwidth GB/s", "TDP W", "price $", "matmul ceiling",
              "STREAM", "detector on the roofline", "images/J", "images/s per k$", "$ per million"]
    rows = []
    for label in merged["options"]["devices"]:
        entry = as_mapping(as_mapping(merged.get("datasheet")).get(label))
        line = lines.get(label)
        if not entry and line is None:
            continue
        peaks = as_mapping(entry.get("peak_tflops"))
        sheet = as_mapping(entry.get("values"))
        shares = {row["what"]: row for row in (line.shares if line else [])}
        matmul = ", ".join(f"{dtype} {tflops:.3g} TFLOPS" + (
            f" ({shares[f'ceiling.matmul.{dtype}']['share']:.0%})" if f"ceiling.matmul.{dtype}" in shares else "")
            for dtype, tflops in (line.matmul.items() if line else []))
        stream = ""
        if line and line.stream:
            kernel, best = max(line.stream.items(), key=lambda item: item[1])
            stream = f"{kernel} {best:.3g} GB/s" + (
                f" ({shares['ceiling.stream']['share']:.0%})" if "ceiling.stream" in shares else "")
        placed = [p for p in (line.to_dict()["placed"] if line else []) if p["name"].startswith("detection.")]
        where = "; ".join(f"{p['intensity']:.3g} FLOP/B, {p['tflops']:.3g} TFLOPS, {p['bound']}"
                          + (f"-bound, {p['share_of_roof']:.0%} of the roof" if "share_of_roof" in p else "")
                          for p in placed)
        own = values.get(label, {})
        per_joule = (f"{own['inferences_per_joule']:.3g} (meter)" if "inferences_per_joule" in own else
                     f"{own['inferences_per_joule_tdp_estimate']:.3g} (TDP estimate)"
                     if "inferences_per_joule_tdp_estimate" in own else "-")
        rows.append([label, str(entry.get("origin") or "none"),
                     ", ".join(f"{p} {v:.4g}" for p, v in peaks.items() if isinstance(v, (int, float))) or "-",
                     _number_or_dash(sheet.get("memory_bandwidth_gbs")), _number_or_dash(sheet.get("tdp_w")),
                     _number_or_dash(sheet.get("list_price_usd")), matmul or "-", stream or "-", where or "-",
                     per_joule, _number_or_dash(own.get("inferences_per_s_per_kusd")),
                     _number_or_dash(own.get("usd_per_million"))])
    return header, rows


def _number_or_dash(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


__all__ = ["Point", "Roofline", "against_datasheet", "rooflines"]
