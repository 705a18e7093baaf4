"""The HTML report's charts, drawn with matplotlib as SVG text (the ``html`` extra; imported only here).

Each function takes plain numbers, never a report: :mod:`pytest_accel.report.html` decides what is shown. Figures
are made with :class:`matplotlib.figure.Figure`, not pyplot, so nothing changes the backend or the figures of the
process that runs the tests (pytest-mpl's users, a suite that plots). Whether matplotlib is there at all is asked
of :func:`pytest_accel.optional.matplotlib_missing`, without importing this module.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: a full-width chart, about the page's width at 96 px per inch; a panel is a third of it, so the panels of all
#: charts share one size and a chart with few panels is drawn narrower instead of blown up
WIDTH_IN = 12.5
PANEL_IN = WIDTH_IN / 3
#: colours per device in the run's device order (matplotlib's tab10, colour-blind safer than its default order)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
BASELINE_COLOUR = "#555555"
RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: small files, selectable, searchable in the page
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


def svg(draw: Any, height_in: float, salt: str, width_in: float = WIDTH_IN) -> str:
    """Call ``draw(figure)`` on a new figure and return it as standalone SVG text. ``salt`` makes the ids of its
    clip paths and markers its own, so several charts can share one page and two runs write the same bytes."""
    import matplotlib

    settings: Any = {**RC, "svg.hashsalt": salt}  # matplotlib types its keys as literals
    with matplotlib.rc_context(settings):
        figure = _figure(width_in, height_in)
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def inline(svg_text: str) -> str:
    """Standalone SVG made fit to sit inside an HTML page: no XML declaration, DOCTYPE or metadata, and no
    namespace declarations (the HTML parser puts ``<svg>`` and ``xlink:href`` into their namespaces itself, so
    the page names no outside address at all)."""
    text = _METADATA.sub("", _PROLOGUE.sub("", svg_text, count=1))
    head, _, rest = text.partition(">")
    return _NAMESPACES.sub("", head) + ">" + rest


# -- speed-up ---------------------------------------------------------------------------------------------------


def speedup_chart(labels: Sequence[str], series: Mapping[str, Sequence[float | None]], first: str,
                  device_colours: dict[str, str]) -> str:
    """Horizontal bars: per metric (a row), each device's speed-up over ``first`` on a log scale around 1x."""

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        count = max(len(series), 1)
        height = 0.8 / count
        values = [v for row in series.values() for v in row if v]
        for index, (device, row) in enumerate(series.items()):
            positions = [i + (index - (count - 1) / 2) * height for i in range(len(labels))]
            bars = [v if v else math.nan for v in row]
            axes.barh(positions, [b - 1 if b == b else math.nan for b in bars], left=1, height=height * 0.9,
                      color=device_colours.get(device, colour(index)), label=f"{device} over {first}")
            for y, value in zip(positions, row, strict=True):
                if value:
                    axes.annotate(f"{value:.2f}x", (value, y), xytext=(3 if value >= 1 else -3, 0),
                                  textcoords="offset points", va="center", ha="left" if value >= 1 else "right",
                                  fontsize=7)
        axes.set_xscale("log")
        low, high = min([*values, 1.0]), max([*values, 1.0])
        axes.set_xlim(low / 1.6, high * 1.6)
        axes.axvline(1, color="black", linewidth=0.8)
        axes.set_yticks(range(len(labels)), labels)
        axes.invert_yaxis()
        axes.set_xlabel(f"speed-up over {first} (log scale; right of 1x: faster)")
        _plain_log_ticks(axes)
        axes.legend(loc="lower right")
        axes.grid(axis="y", visible=False)

    return svg(draw, 0.9 + 0.28 * len(labels) * max(1, len(series)) ** 0.5, "speedup", PANEL_IN * 2)


def _plain_log_ticks(axes: Axes) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    low, high = axes.get_xlim()
    ticks = [t * 10.0**k for k in range(-3, 4) for t in (1, 2, 5)]
    axes.xaxis.set_major_locator(FixedLocator([t for t in ticks if low <= t <= high]))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))


# -- sample distributions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """One device's samples of one metric, with its baseline's (None: not shown, ``note`` says why)."""

    device: str
    #: the device and the test's parameters (``cpu bf16``)
    label: str
    run: Sequence[float]
    baseline: Sequence[float] | None
    note: str = ""


def _ecdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(values)
    count = len(ordered)
    return ordered, [(i + 1) / count for i in range(count)]


def distribution_chart(title: str, panels: Sequence[Distribution], scale: float, unit: str,
                       device_colours: dict[str, str]) -> str:
    """Empirical CDFs, a panel per device: this run's samples against its baseline's, both times ``scale``."""
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)

    def draw(figure: Figure) -> None:
        grid = figure.subplots(rows, columns, squeeze=False)
        for axes, panel in zip(grid.flat, panels, strict=False):
            run_x, run_y = _ecdf([v * scale for v in panel.run])
            axes.step(run_x, run_y, where="post", color=device_colours.get(panel.device, colour(0)),
                      label=f"this run (n={len(run_x)})")
            if panel.baseline:
                base_x, base_y = _ecdf([v * scale for v in panel.baseline])
                axes.step(base_x, base_y, where="post", color=BASELINE_COLOUR, linestyle="--",
                          label=f"baseline (n={len(base_x)})")
            axes.set_title(panel.label + (f"\n{panel.note}" if panel.note else ""), fontsize=8)
            axes.set_xlabel(unit)
            axes.set_ylim(0, 1.02)
            axes.legend(loc="lower right")
        for axes in list(grid.flat)[len(panels):]:
            axes.set_visible(False)
        grid[0][0].set_ylabel("share of rounds at or below")
        figure.suptitle(title, fontsize=9)

    return svg(draw, 0.6 + 2.4 * rows, f"ecdf {title}", PANEL_IN * columns)


# -- throughput against batch size ------------------------------------------------------------------------------


def batch_chart(title: str, lines: Mapping[str, Sequence[tuple[int, float]]], unit: str,
                styles: dict[str, tuple[str, str]]) -> str:
    """Throughput per batch size, a line per device and dtype; ``styles``: (colour, line style) per line."""

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        batches: set[int] = set()
        for index, (label, points) in enumerate(lines.items()):
            xs = [b for b, _ in points]
            batches.update(xs)
            line_colour, linestyle = styles.get(label, (colour(index), "-"))
            axes.plot(xs, [v for _, v in points], marker="o", color=line_colour, linestyle=linestyle, label=label)
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted(batches), [str(b) for b in sorted(batches)])
        axes.minorticks_off()
        axes.set_xlabel("batch size")
        axes.set_ylabel(f"throughput ({unit})" if unit else "throughput")
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.legend(loc="best")

    return svg(draw, 3.2, f"batch {title}", PANEL_IN * 2)


# -- training curves --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    label: str
    epochs: Sequence[float]
    val_accuracy: Sequence[float] | None
    val_loss: Sequence[float] | None
    train_loss: Sequence[float] | None
    colour: str
    linestyle: str = "-"


@dataclass(frozen=True)
class Band:
    epochs: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]


def curves_chart(title: str, curves: Sequence[Curve], accuracy_band: Band | None, loss_band: Band | None,
                 band_label: str) -> str:
    """Validation accuracy and loss per epoch, a line per device and dtype, over the reference runs' band."""

    def draw(figure: Figure) -> None:
        accuracy_axes, loss_axes = figure.subplots(1, 2)
        for axes, band, what in ((accuracy_axes, accuracy_band, "validation accuracy"),
                                 (loss_axes, loss_band, "validation loss")):
            if band is not None:
                axes.fill_between(band.epochs, band.low, band.high, color="#999999", alpha=0.3, linewidth=0,
                                  label=band_label)
            axes.set_xlabel("epoch")
            axes.set_ylabel(what)
        for curve in curves:
            if curve.val_accuracy is not None:
                accuracy_axes.plot(curve.epochs, curve.val_accuracy, color=curve.colour, linestyle=curve.linestyle,
                                   label=curve.label)
            if curve.val_loss is not None:
                loss_axes.plot(curve.epochs, curve.val_loss, color=curve.colour, linestyle=curve.linestyle,
                               label=curve.label)
            if curve.train_loss is not None:
                loss_axes.plot(curve.epochs, curve.train_loss, color=curve.colour, linestyle=":", linewidth=1,
                               label=f"{curve.label} (train)")
        accuracy_axes.legend(loc="lower right")
        loss_axes.legend(loc="upper right")
        figure.suptitle(title, fontsize=9)

    return svg(draw, 3.4, f"curves {title}", PANEL_IN * 2)


# -- parity per dtype -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParityPanel:
    metric: str
    #: (dtype, device, value, the bound that check is held to) per point
    bars: Sequence[tuple[str, str, float | None, float | None]]
    direction: str


def parity_chart(panels: Sequence[ParityPanel], device_colours: dict[str, str]) -> str:
    """A panel per parity metric: each dtype's value per device, with the bound it is held to."""
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)

    def draw(figure: Figure) -> None:
        grid = figure.subplots(rows, columns, squeeze=False)
        for axes, panel in zip(grid.flat, panels, strict=False):
            _parity_panel(axes, panel, device_colours)
        for axes in list(grid.flat)[len(panels):]:
            axes.set_visible(False)

    return svg(draw, 0.3 + 2.6 * rows, "parity", PANEL_IN * columns)


def _parity_panel(axes: Axes, panel: ParityPanel, device_colours: dict[str, str]) -> None:
    """Points, not bars: a bar from zero hides how near 0.995 is to a bound of 0.99, and log scales have no zero."""
    dtypes = list(dict.fromkeys(dtype for dtype, _, _, _ in panel.bars))
    devices = list(dict.fromkeys(device for _, device, _, _ in panel.bars))
    step = 0.6 / max(len(devices), 1)
    values = [v for _, _, v, _ in panel.bars if v is not None]
    bounds = [b for _, _, _, b in panel.bars if b is not None]
    positive = [v for v in [*values, *bounds] if v > 0]
    log = bool(positive) and min(values, default=0.0) >= 0 and max(positive) / min(positive) > 30
    floor = min(positive) / 3 if log else None
    relation = "≤" if panel.direction == "lower" else "≥"
    labelled: set[tuple[str, float]] = set()
    for dtype, device, value, bound in panel.bars:
        x = dtypes.index(dtype) + (devices.index(device) - (len(devices) - 1) / 2) * step
        if bound is not None:  # a dash over the point's own slot: bounds differ per dtype
            axes.hlines(bound, x - step / 2, x + step / 2, color="#d62728", linewidth=1.5,
                        label=f"its bound ({relation})")
            if (dtype, bound) not in labelled:
                labelled.add((dtype, bound))
                axes.annotate(f"{bound:.2g}", (x - step / 2, bound), xytext=(0, 2), textcoords="offset points",
                              fontsize=6, color="#d62728")
        if value is None:
            continue
        at_zero = log and value <= 0
        shown = floor if at_zero and floor is not None else value
        axes.plot([x], [shown], marker="v" if at_zero else "o", markersize=7, linestyle="none",
                  color=device_colours.get(device), label=device)
        axes.annotate("0" if value == 0 else f"{value:.3g}", (x, shown), xytext=(5, 0), textcoords="offset points",
                      va="center", fontsize=7)
    if log and floor is not None:
        axes.set_yscale("log")
        axes.set_ylim(floor / 2, max(positive) * 3)
    else:
        span = [*values, *bounds] or [0.0, 1.0]
        low, high = min(span), max(span)
        margin = (high - low) * 0.25 or abs(high) * 0.01 or 1.0
        axes.set_ylim(low - margin, high + margin)
    axes.set_xlim(-0.6, len(dtypes) - 0.4)
    axes.set_xticks(range(len(dtypes)), dtypes)
    axes.set_title(panel.metric, fontsize=8)
    axes.grid(axis="x", visible=False)
    _dedupe_legend(axes)


def _dedupe_legend(axes: Axes) -> None:
    handles, labels = axes.get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    axes.legend(seen.values(), seen.keys(), loc="best", fontsize=7)


# -- roofline ---------------------------------------------------------------------------------------------------


def roofline_chart(title: str, peaks: Mapping[str, float], bandwidth_gbs: float | None,
                   matmul: Mapping[str, float], stream: Mapping[str, float],
                   points: Sequence[tuple[str, float, float]], device_colour: str) -> str:
    """Log-log TFLOP/s against FLOPs per byte: the peak roofs (solid, one per precision), the bandwidth slope, the
    measured ceilings (dotted: matmul per dtype, STREAM as slopes) and the workloads as labelled points."""

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        intensities = [p[1] for p in points if p[1] > 0] or [1.0]
        low = min(0.05, min(intensities) / 4)
        high = max(1e4, max(intensities) * 4)
        xs = [low * (high / low) ** (i / 200) for i in range(201)]
        for index, (precision, peak) in enumerate(sorted(peaks.items(), key=lambda item: item[1])):
            roof = [min(peak, bandwidth_gbs * 1e-3 * x) if bandwidth_gbs else peak for x in xs]
            axes.plot(xs, roof, color=colour(index), linewidth=1.5, label=f"peak {precision} {peak:.3g} TFLOP/s")
        if bandwidth_gbs and not peaks:
            axes.plot(xs, [bandwidth_gbs * 1e-3 * x for x in xs], color=BASELINE_COLOUR,
                      label=f"bandwidth {bandwidth_gbs:.4g} GB/s")
        for dtype, value in matmul.items():
            axes.axhline(value, color=device_colour, linestyle=":", linewidth=1)
            axes.annotate(f"matmul {dtype} {value:.3g}", (high, value), ha="right", va="bottom", fontsize=7)
        for kernel, gbs in stream.items():
            axes.plot(xs, [gbs * 1e-3 * x for x in xs], color=device_colour, linestyle=":", linewidth=1)
            axes.annotate(f"STREAM {kernel} {gbs:.3g} GB/s", (low * 2, gbs * 1e-3 * low * 2), fontsize=7,
                          rotation=0)
        for name, intensity, tflops in points:
            axes.plot([intensity], [tflops], marker="o", color=device_colour, linestyle="none")
            axes.annotate(name, (intensity, tflops), textcoords="offset points", xytext=(4, 4), fontsize=7)
        values = [*peaks.values(), *matmul.values(), *(p[2] for p in points)]
        if values:
            axes.set_ylim(min(values) / 20, max(values) * 3)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlim(low, high)
        axes.set_xlabel("arithmetic intensity (FLOPs per byte of memory traffic)")
        axes.set_ylabel("TFLOP/s")
        axes.set_title(title)
        axes.legend(loc="lower right")

    return svg(draw, 3.6, f"roofline {title}", PANEL_IN * 2)
