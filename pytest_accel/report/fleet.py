"""``pytest-accel report A.json B.json ...`` (or a folder of reports): every device of every machine side by side.

Each report is one run on one machine (a CI job per runner label, one per accelerator). A *system* is a device of a
machine: ``<machine>/<device spec>``, the machine named by the report's host facts (``PYTEST_ACCEL_MACHINE`` or the
host name; a report written before those facts by its file name). The reports merge into one report-shaped document
whose devices are the systems, so the page has every chart a run's page has (speed-ups, latency and throughput by
batch, training curves, parity), across machines; a table per metric puts each system's value beside the reference
system's, with the speed-up over it.

Results are compared only where they measured the same thing. A test's name already carries its dtype and any
non-default input (``test_accuracy-fp32@mymodel-3f2a_data-1c9e_640``: model digest, data set, image size); the
suite version is the report's pytest-accel version. A test that ran under several suite versions is kept apart per
version, and a test function that ran on different inputs or dtypes is listed with what differs: never silently
compared.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_accel.metrics import KINDS, format_value
from pytest_accel.report.chart_sections import Section, as_mapping
from pytest_accel.report.document import ReportError, load_report
from pytest_accel.report.facts import speedup_of

FLEET_SCHEMA = "pytest-accel/fleet"
FLEET_SCHEMA_VERSION = 1
#: kinds the fleet table shows (the others stay in the per-system tables of the page)
TABLE_KINDS = ("accuracy", "parity", "convergence", "latency", "throughput", "startup", "memory", "energy", "share")


class FleetError(Exception):
    """Reports that cannot be merged; the message is one line."""


@dataclass(frozen=True)
class System:
    """One device of one machine, as one report measured it."""

    label: str
    machine: str
    spec: str
    key: str
    report: Path
    suite_version: str
    info: Mapping[str, Any]
    host: Mapping[str, Any]
    software: Mapping[str, Any]
    #: the run's conformance scorecard of this device, where one was found beside its report
    scorecard: Mapping[str, Any] | None = None


@dataclass
class Fleet:
    systems: list[System]
    #: the report-shaped document whose devices are the systems' labels (rendered as a run's page is)
    merged: dict[str, Any]
    reference: str | None
    #: what was kept apart, and why
    apart: list[str] = field(default_factory=list)
    #: files in a folder that are not reports
    skipped: list[str] = field(default_factory=list)

    @cached_property
    def against_datasheet(self) -> tuple[list[str], list[list[str]]]:
        """The "against the datasheet" table (header, rows), worked out once for the JSON, Markdown and page."""
        from pytest_accel.report.roofline import against_datasheet

        return against_datasheet(self.merged)


SCORECARD_SCHEMA = "pytest-accel/scorecard"


def _scorecard(path: Path) -> dict[str, Any] | None:
    """A conformance scorecard (``--accel-scorecard``) with the fields the fleet shows, else None."""
    from pytest_accel.jsonfile import JsonFileError, read_json_file

    try:
        document = read_json_file(path)
    except (JsonFileError, FileNotFoundError):
        return None
    if not isinstance(document, dict) or document.get("schema") != SCORECARD_SCHEMA:
        return None
    device, totals = document.get("device"), document.get("totals")
    if not isinstance(device, dict) or not isinstance(totals, dict) \
            or not all(isinstance(totals.get(k), int) for k in ("passed", "failed")):
        return None
    return document


def report_files(paths: Sequence[Path]) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Every report named, and every report under a folder named (recursively, ``*.json``); FleetError for a named
    file that is not a report or a folder with none. The other files of a folder are listed, not read as reports;
    scorecards among them are read by :func:`scorecard_files`."""
    found: list[tuple[Path, dict[str, Any]]] = []
    skipped: list[str] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.json") if p.is_file())
            before = len(found)
            for candidate in inside:
                try:
                    found.append((candidate, load_report(candidate)))
                except ReportError as error:
                    if _scorecard(candidate) is None:
                        skipped.append(str(error))
            if len(found) == before:
                raise FleetError(f"{path}: no pytest-accel report in this folder ({len(inside)} JSON file(s) read)")
        else:
            try:
                found.append((path, load_report(path)))
            except ReportError as error:
                raise FleetError(str(error)) from None
    if not found:
        raise FleetError("no reports given")
    return found, skipped


def scorecard_files(paths: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """The scorecards under the folders named, each beside the report of its run."""
    return [(candidate, card) for path in paths if path.is_dir()
            for candidate in sorted(p for p in path.rglob("*.json") if p.is_file())
            if (card := _scorecard(candidate)) is not None]


def machine_name(document: Mapping[str, Any], path: Path) -> str:
    host = as_mapping(document.get("host"))
    name = host.get("machine") or host.get("name")
    if isinstance(name, str) and name.strip() and name.isprintable():
        return name.strip()
    return path.stem


def build_fleet(sources: Sequence[tuple[Path, Mapping[str, Any]]], reference: str | None = None,
                skipped: Sequence[str] = (), scorecards: Sequence[tuple[Path, Mapping[str, Any]]] = ()) -> Fleet:
    """Merge the reports; ``reference``: the system speed-ups are over (its label, device spec or device key, when
    that names one system), else the first system."""
    systems: list[System] = []
    results: list[dict[str, Any]] = []
    peers: list[dict[str, Any]] = []
    devices: dict[str, Any] = {}
    datasheet: dict[str, Any] = {}
    for path, document in sources:
        machine = machine_name(document, path)
        reported = as_mapping(document.get("devices"))
        ran = list(dict.fromkeys(str(result["device"]) for result in document["results"]))
        labels: dict[str, str] = {}
        for spec in ran:
            label = f"{machine}/{spec}"
            taken = {system.label for system in systems}
            if label in taken:  # the same device of the same machine in two reports: both kept, told apart
                label = next(f"{label}#{n}" for n in range(2, len(taken) + 3) if f"{label}#{n}" not in taken)
            labels[spec] = label
            info = as_mapping(reported.get(spec))
            systems.append(System(label, machine, spec, str(info.get("key") or "-"), path,
                                  str(document.get("pytest_accel") or "?"), info, as_mapping(document.get("host")),
                                  as_mapping(document.get("software"))))
            devices[label] = {**info, "machine": machine, "report": str(path)}
            peak = as_mapping(document.get("datasheet")).get(spec)
            if isinstance(peak, dict):
                datasheet[label] = peak
        for result in document["results"]:
            results.append({**result, "device": labels[str(result["device"])],
                            "suite_version": str(document.get("pytest_accel") or "?")})
        for finding in document.get("peers") or []:  # each run's own peer check, under the systems' labels
            if isinstance(finding, dict) and str(finding.get("device")) in labels:
                peers.append({**finding, "device": labels[str(finding["device"])]})
    apart = _keep_apart(results)
    systems, unmatched = _attach_scorecards(systems, scorecards)
    chosen = _reference(systems, reference)
    order = [chosen, *(s.label for s in systems if s.label != chosen)] if chosen else [s.label for s in systems]
    merged = {"schema": FLEET_SCHEMA, "schema_version": FLEET_SCHEMA_VERSION,
              "options": {"devices": order}, "devices": devices, "results": results, "peers": peers,
              "datasheet": datasheet,
              "reports": [str(path) for path, _ in sources]}
    return Fleet(systems, merged, chosen, apart, [*skipped, *unmatched])


def _attach_scorecards(systems: list[System], scorecards: Sequence[tuple[Path, Mapping[str, Any]]]
                       ) -> tuple[list[System], list[str]]:
    """Each scorecard on the system of its device (spec and key) whose report lies nearest (the same folder, else
    the only such system); the others listed."""
    from dataclasses import replace

    unmatched = []
    by_label = {system.label: system for system in systems}
    for path, card in scorecards:
        device = card["device"]
        same = [s for s in systems if s.spec == device.get("spec") and s.key == device.get("key")]
        near = [s for s in same if s.report.parent == path.parent] or (same if len(same) == 1 else [])
        if len(near) != 1:
            unmatched.append(f"{path}: a scorecard of {device.get('spec')} ({device.get('key')}) that matches "
                             f"{len(near) or len(same)} of the reports' devices")
            continue
        by_label[near[0].label] = replace(by_label[near[0].label], scorecard=card)
    return [by_label[system.label] for system in systems], unmatched


def scorecard_text(card: Mapping[str, Any] | None) -> str:
    if card is None:
        return "-"
    totals = card["totals"]
    shown = [f"{totals[k]} {k}" for k in ("passed", "failed", "unsupported", "xfailed", "skipped")
             if isinstance(totals.get(k), int) and (totals[k] or k in ("passed", "failed"))]
    return ", ".join(shown)


def _reference(systems: Sequence[System], wanted: str | None) -> str | None:
    if not systems:
        return None
    if wanted is None:
        return systems[0].label
    for field_name in ("label", "spec", "key"):
        matches = [s.label for s in systems if getattr(s, field_name) == wanted]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise FleetError(f"--reference {wanted!r} names {len(matches)} systems ({', '.join(matches)}); give "
                             "one of those labels")
    raise FleetError(f"--reference {wanted!r} names no system; expected one of: "
                     f"{', '.join(s.label for s in systems)}")


def _keep_apart(results: list[dict[str, Any]]) -> list[str]:
    """Rename in place the tests that ran under several suite versions (one name per version, never paired) and
    say which test functions ran on different inputs or dtypes."""
    notes: list[str] = []
    versions: dict[tuple[str, str], set[str]] = {}
    for result in results:
        versions.setdefault((result["suite"], result["test"]), set()).add(result["suite_version"])
    for (suite, test), seen in sorted(versions.items()):
        if len(seen) > 1:
            notes.append(f"{suite}::{test} ran under pytest-accel {', '.join(sorted(seen))}: another suite "
                         "version may measure another workload, so each version is its own row")
    for result in results:
        if len(versions[(result["suite"], result["test"])]) > 1:
            result["test"] = f"{result['test']} (pytest-accel {result['suite_version']})"
    variants: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for result in results:  # the same function and parameters (dtype) on other inputs: ``test@<variant>``
        function = str(result["function"]) if isinstance(result.get("function"), str) else str(result["test"])
        params = str(result["params"]) if isinstance(result.get("params"), str) else ""
        key = (result["suite"], function, params)
        variants.setdefault(key, {}).setdefault(result["test"], set()).add(result["device"])
    for (suite, function, params), tests in sorted(variants.items()):
        if len(tests) > 1:
            shown = "; ".join(f"{test} on {', '.join(sorted(on))}" for test, on in sorted(tests.items()))
            notes.append(f"{suite}::{function}{f' ({params})' if params else ''} ran on different inputs (model, "
                         f"data set or image size) or suite versions, compared only where they match: {shown}")
    return notes


# -- the comparison table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    suite: str
    test: str
    metric: str
    kind: str
    unit: str
    direction: str
    #: per system label: (value, verdict) where the system measured it
    values: dict[str, tuple[float | None, str]]
    #: per system label: how many times faster than the reference (speed metrics that the reference measured)
    speedups: dict[str, float | None]


def table_rows(fleet: Fleet) -> list[FleetRow]:
    rows: dict[tuple[str, str, str], FleetRow] = {}
    for result in fleet.merged["results"]:
        for entry in result["metrics"]:
            kind = str(entry.get("kind"))
            if kind not in TABLE_KINDS:
                continue
            key = (result["suite"], result["test"], str(entry["name"]))
            row = rows.get(key)
            if row is None:
                row = rows[key] = FleetRow(*key, kind, str(entry.get("unit") or ""),
                                           str(entry.get("direction") or "lower"), {}, {})
            value = entry.get("value")
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) else None
            row.values[result["device"]] = (number, str(entry.get("verdict") or ""))
    for row in rows.values():
        info = KINDS.get(row.kind)
        if info is None or not info.speed or fleet.reference not in row.values:
            continue
        first = row.values[fleet.reference][0]
        for label, (value, _) in row.values.items():
            row.speedups[label] = speedup_of(first, value, row.direction)
    return list(rows.values())


def _cell(row: FleetRow, label: str) -> str:
    if label not in row.values:
        return ""
    value, verdict = row.values[label]
    text = format_value(value, row.unit)
    speedup = row.speedups.get(label)
    if speedup is not None and label in row.speedups:
        text += f" ({speedup:.2f}x)"
    if verdict in ("regression", "inconclusive"):
        text += f" [{verdict}]"
    return text


def _machines(fleet: Fleet) -> tuple[list[str], list[list[str]]]:
    header = ["system", "machine", "device", "key", "host", "software", "scorecard", "report"]
    rows = []
    for system in fleet.systems:
        info = system.info
        device = " ".join(str(info.get(k) or "") for k in ("vendor", "model")).strip() or "-"
        host = system.host
        host_text = ", ".join(part for part in (
            str(host.get("cpu") or ""), f"{host['cores']} cores" if host.get("cores") else "",
            str(host.get("os") or "")) if part) or "-"
        runtime = as_mapping(info.get("runtime"))
        software = ", ".join([f"pytest-accel {system.suite_version}",
                              *(f"{k} {v}" for k, v in runtime.items())])
        rows.append([system.label + (" (reference)" if system.label == fleet.reference else ""), system.machine,
                     device, system.key, host_text, software, scorecard_text(system.scorecard),
                     str(system.report)])
    return header, rows


def to_dict(fleet: Fleet) -> dict[str, Any]:
    return {
        "schema": FLEET_SCHEMA, "schema_version": FLEET_SCHEMA_VERSION,
        "reference": fleet.reference,
        "systems": [{"label": s.label, "machine": s.machine, "spec": s.spec, "key": s.key, "report": str(s.report),
                     "suite_version": s.suite_version, "device": dict(s.info), "host": dict(s.host),
                     "software": dict(s.software),
                     "scorecard": dict(s.scorecard["totals"]) if s.scorecard is not None else None}
                    for s in fleet.systems],
        "rows": [{"suite": r.suite, "test": r.test, "metric": r.metric, "kind": r.kind, "unit": r.unit,
                  "direction": r.direction,
                  "values": {label: {"value": value, "verdict": verdict,
                                     **({"speedup": r.speedups[label]} if label in r.speedups else {})}
                             for label, (value, verdict) in r.values.items()}}
                 for r in table_rows(fleet)],
        "against_datasheet": [dict(zip(header, row, strict=True)) for header, rows in [fleet.against_datasheet]
                              for row in rows],
        "peaks": fleet.merged["datasheet"],
        "kept_apart": fleet.apart,
        "skipped": fleet.skipped,
    }


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)]


def _comparison(fleet: Fleet) -> tuple[list[str], list[list[str]]]:
    labels = fleet.merged["options"]["devices"]
    header = ["test", "metric", *labels]
    rows = [[f"{r.suite}::{r.test}", r.metric, *(_cell(r, label) for label in labels)] for r in table_rows(fleet)]
    return header, rows


def markdown(fleet: Fleet) -> str:
    lines = [f"## pytest-accel fleet: {len(fleet.systems)} systems on "
             f"{len({s.machine for s in fleet.systems})} machine(s)", "",
             f"Speed-ups (x) are over **{fleet.reference}**; [regression] marks a metric its own run judged a "
             "regression.", "", *_md_table(*_machines(fleet)), ""]
    if fleet.apart:
        lines += ["**Kept apart:**", "", *(f"- {note}" for note in fleet.apart), ""]
    header, rows = _comparison(fleet)
    lines += ["### Side by side", "", *_md_table(header, rows), ""]
    header, rows = fleet.against_datasheet
    if rows:
        lines += ["### Against the datasheet", "", *_md_table(header, rows), ""]
    if fleet.skipped:
        lines += ["Not read (not reports): " + "; ".join(fleet.skipped), ""]
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    from html import escape

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def lead_sections(fleet: Fleet) -> list[Section]:
    """The page's first sections: the machines and their devices, what was kept apart, the side-by-side table."""
    machines = Section("machines", "Machines and devices", body=_html_table(*_machines(fleet)))
    machines.notes.append(f"Speed-ups are over {fleet.reference}.")
    machines.notes += [f"Kept apart: {note}" for note in fleet.apart]
    machines.notes += [f"Not read: {note}" for note in fleet.skipped]
    side = Section("side-by-side", "Side by side", body=_html_table(*_comparison(fleet)))
    header, rows = fleet.against_datasheet
    if not rows:
        return [machines, side]
    sheet = Section("datasheet", "Against the datasheet", body=_html_table(header, rows))
    sheet.notes.append("Peaks, bandwidth, TDP and price are the datasheet's (sources in fleet.json and each "
                       "scorecard) or, for a host CPU, an estimate from its instruction sets; the rest is measured.")
    return [machines, side, sheet]


def html_page(fleet: Fleet) -> str:
    from pytest_accel.report.html import render

    title = f"pytest-accel fleet: {len(fleet.systems)} systems on {len({s.machine for s in fleet.systems})} machine(s)"
    return render(fleet.merged, lead=lead_sections(fleet), heading=title)


def run_command(args: argparse.Namespace) -> int:
    """Many reports (or folders of them) merged: fleet.json, fleet.md and fleet.html under the --out folder."""
    from pytest_accel.baselines import atomic_write_json, atomic_write_text
    from pytest_accel.report.markdown import post_to_step_summary

    out = Path(args.out or "fleet")
    if out.exists() and not out.is_dir():
        print(f"pytest-accel: report -o {out}: several reports make a folder of documents (fleet.html, fleet.md, "
              "fleet.json); give a folder", file=sys.stderr)
        return 2
    try:
        paths = [Path(name) for name in args.report]
        sources, skipped = report_files(paths)
        merged = build_fleet(sources, args.reference, skipped, scorecard_files(paths))
    except FleetError as error:
        print(f"pytest-accel: report: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "fleet.json", to_dict(merged))
    text = markdown(merged)
    atomic_write_text(out / "fleet.md", text)
    atomic_write_text(out / "fleet.html", html_page(merged))
    post_to_step_summary(text, "pytest-accel")
    machines = len({system.machine for system in merged.systems})
    print(f"{len(sources)} report(s), {len(merged.systems)} systems on {machines} machine(s); speed-ups over "
          f"{merged.reference}")
    for note in merged.apart:
        print(f"kept apart: {note}")
    print(f"written: {out / 'fleet.html'}, {out / 'fleet.md'}, {out / 'fleet.json'}")
    return 0
