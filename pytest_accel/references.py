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
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_accel.baselines import (
    REFERENCE_FOLDER,
    BaselineError,
    load_document,
    safe_name,
    write_document,
)
from pytest_accel.environment import software_stack, utc_now
from pytest_accel.metrics import KINDS, Metric
from pytest_accel.records import baseline_record


def shipped_reference_dir() -> Path:
    """``reference/`` of the bundled suites: ``suites/reference`` in a checkout, inside the package in a wheel."""
    spec = importlib.util.find_spec("pytest_accel.suites")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    base = Path(locations[0]) if locations else Path(__file__).parent / "suites"
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
                f"reference file {self.path} has no metric {metric!r} (it has: {', '.join(self.metrics) or 'none'}); "
                "re-record it with the pytest-accel console script"
            ) from None

    def value(self, metric: str) -> float:
        return float(self._record(metric)["value"])

    def summary(self, metric: str) -> Mapping[str, Any]:
        return self._record(metric).get("summary", {})

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
        """The reference file as it is, or None when there is none; BaselineError when it is damaged."""
        path = self.path(suite, name)
        document = load_document(path)
        if document is None:
            return None
        measured = document.get("measured", {})
        if not isinstance(measured, dict):
            raise BaselineError(f"reference file {path}: 'measured' is not an object")
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
