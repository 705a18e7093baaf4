"""Device-independent references: what a workload should reach on any device (the fp32 mAP of the bundled detector,
the convergence runs of the gesture classifier), recorded once on the CPU. The bundled suites' references ship with
them (``suites/reference/``, in the wheel ``pytest_accel/suites/reference/``), so they are found wherever the
baselines are kept; ``--accel-reference-dir`` points elsewhere.

A reference file is a baseline document whose header says what was measured (``measured``): the *identity* of
the inputs (model digest, data set, image size, recipe...) plus facts about the run. A reference is applied only to
runs with the same identity, never to another model or data set.
"""

from __future__ import annotations

import importlib.util
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_accel.baselines import (
    REFERENCE_FOLDER,
    BaselineError,
    fault_of,
    safe_name,
    validate_document,
    write_document,
)
from pytest_accel.environment import software_stack, utc_now
from pytest_accel.jsonfile import JsonFileError, read_json_file
from pytest_accel.metrics import KINDS, Metric
from pytest_accel.records import baseline_record

#: the fewest reference runs a per-run comparison (the convergence test) is made against
MIN_REFERENCE_RUNS = 3


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _listed(names: Sequence[str] | Mapping[str, Any]) -> str:
    text = ", ".join(names)
    return "none" if not text else text if text.isprintable() and len(text) <= 200 else _shown(text)


def shipped_reference_dir() -> Path:
    """``reference/`` of the bundled suites: ``suites/reference`` in a checkout, inside the package in a wheel."""
    spec = importlib.util.find_spec("pytest_accel.suites")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if locations:
        return Path(locations[0]) / REFERENCE_FOLDER
    # A checkout imported through PYTHONPATH, without the install that maps pytest_accel.suites to suites/
    checkout_suites = Path(__file__).resolve().parent.parent / "suites"
    base = checkout_suites if (checkout_suites / REFERENCE_FOLDER).is_dir() else Path(__file__).parent / "suites"
    return base / REFERENCE_FOLDER


@dataclass(frozen=True)
class Reference:
    suite: str
    name: str
    path: Path
    measured: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, Any]]

    @property
    def source(self) -> str:
        """How verdicts name it: ``reference/<suite>/<name>.json``."""
        return f"{REFERENCE_FOLDER}/{self.path.parent.name}/{self.path.name}"

    def _record(self, metric: str) -> Mapping[str, Any]:
        try:
            return self.metrics[metric]
        except KeyError:
            raise BaselineError(
                f"reference file {self.path} has no metric {metric!r} (it has: {_listed(self.metrics)}); "
                "re-record it with the pytest-accel console script"
            ) from None

    def value(self, metric: str) -> float:
        return float(self._record(metric)["value"])

    def summary(self, metric: str) -> Mapping[str, Any]:
        summary = self._record(metric).get("summary", {})
        return summary if isinstance(summary, dict) else {}  # load() refused any other

    def per_seed(self, metric: str, low: float, high: float, whole: bool = False) -> list[float]:
        """The metric's value per reference run (``summary.per_seed``): at least :data:`MIN_REFERENCE_RUNS`
        numbers from ``low`` to ``high`` (whole numbers with ``whole``), else a :class:`BaselineError` naming the
        file and field."""
        values = self.summary(metric).get("per_seed")
        field = f"reference file {self.path}: metrics[{metric!r}].summary.per_seed"
        if not isinstance(values, list) or len(values) < MIN_REFERENCE_RUNS:
            raise BaselineError(f"{field} is {_shown(values)}; expected a list of at least {MIN_REFERENCE_RUNS} "
                                "runs' values")
        for index, value in enumerate(values):
            if not _number(value) or not low <= value <= high or whole and value != int(value):
                raise BaselineError(f"{field}[{index}] is {_shown(value)}; expected a {'whole ' if whole else ''}"
                                    f"number from {low:g} to {high:g}")
        return [float(value) for value in values]

    def mismatch(self, identity: Mapping[str, Any]) -> str | None:
        """None when this reference was recorded for ``identity``; else which parts differ."""
        differing = [key for key, value in identity.items() if self.measured.get(key) != value]
        return f"reference recorded for another {', '.join(differing)}" if differing else None


class ReferenceStore:
    """``<reference-dir>/<suite>/<name>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, suite: str, name: str) -> Path:
        return self.root / safe_name(suite) / f"{safe_name(name)}.json"

    def load(self, suite: str, name: str) -> Reference | None:
        """The reference file as it is, or None when there is none; BaselineError when it is damaged. Read
        bounded (:mod:`pytest_accel.jsonfile`) and checked as a baseline document is, plus what a reference
        holds: ``measured`` and every metric's ``summary`` are objects, an accuracy is a fraction."""
        path = self.path(suite, name)
        try:
            document = read_json_file(path)
        except FileNotFoundError:
            return None
        except JsonFileError as error:
            raise BaselineError(f"reference file {error}") from None
        try:
            validate_document(path, document)
        except BaselineError as error:
            raise BaselineError(f"reference file {fault_of(error)}") from None
        measured = document.get("measured", {})
        if not isinstance(measured, dict):
            raise BaselineError(f"reference file {path}: 'measured' is not an object")
        for metric, record in document["metrics"].items():
            if not isinstance(record.get("summary", {}), dict):
                raise BaselineError(f"reference file {path}: metrics[{metric!r}].summary is not an object")
            if record["kind"] == "accuracy" and not 0 <= record["value"] <= 1:
                raise BaselineError(f"reference file {path}: metrics[{metric!r}].value is {record['value']!r}; a "
                                    "reference accuracy is a fraction from 0 to 1")
        return Reference(suite, name, path, measured, document["metrics"])

    def find(self, suite: str, name: str, identity: Mapping[str, Any],
             record_args: Sequence[str] = ()) -> Reference | None:
        """The reference for exactly these inputs, or None when there is none or it was recorded for others.

        A damaged file is a :class:`BaselineError` that names the command re-recording it: ``pytest-accel
        <suite>-reference`` with ``record_args`` (the run's non-default inputs) and ``--force``."""
        try:
            reference = self.load(suite, name)
        except BaselineError as error:
            command = shlex.join(["pytest-accel", f"{suite}-reference", *record_args,
                                  "--reference-dir", str(self.root), "--force"])
            raise BaselineError(f"{error}; references are never written by --accel-update-baselines: re-record it "
                                f"with: {command}") from None
        if reference is None or reference.mismatch(identity) is not None:
            return None
        return reference

    def require(self, suite: str, name: str, identity: Mapping[str, Any], record_args: Sequence[str] = ()
                ) -> Reference:
        """The reference for these inputs, which must exist (a suite's bundled defaults ship theirs): else a
        :class:`BaselineError` in one line naming where it looked and why it did not apply."""
        reference = self.find(suite, name, identity, record_args)
        if reference is not None:
            return reference
        path = self.path(suite, name)
        existing = self.load(suite, name)
        why = existing.mismatch(identity) if existing is not None else "no such file"
        command = shlex.join(["pytest-accel", f"{suite}-reference", *record_args, "--reference-dir", str(self.root)])
        raise BaselineError(f"the {suite} suite's reference for its bundled defaults is missing: looked for {path} "
                            f"({why}); point --accel-reference-dir at the folder that holds it (by default the "
                            f"suites' own reference/ folder), or record it: {command}")

    def record(
        self,
        suite: str,
        name: str,
        identity: Mapping[str, Any],
        metrics: Sequence[Metric],
        facts: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> Path:
        """Write a reference (atomically); an existing file is replaced only with ``force``."""
        path = self.path(suite, name)
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists; pass --force to replace it")
        header = {"measured": {**identity, **(facts or {})}, "software": software_stack(), "recorded_at": utc_now()}
        records = {metric.name: baseline_record(metric, KINDS[metric.kind].default_tolerance) for metric in metrics}
        write_document(path, header, records)
        return path
