"""The example CI workflows under examples/ci/ parse, and the commands they run are ones this version takes: the
console script's arguments through its own parser, pytest's accel options among those the plugin registers, the
tests and -k names among the suites' own, the interpreters made by an earlier step."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from pytest_accel.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "examples" / "ci").glob("*.yml"))


def _runs(workflow: dict[str, Any]) -> list[str]:
    """Every step's shell command, ${{ inputs.X }} replaced by the input's default."""
    inputs = ((workflow.get(True) or workflow.get("on") or {}).get("workflow_dispatch") or {}).get("inputs") or {}
    commands = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                commands.append(re.sub(r"\$\{\{\s*inputs\.(\w+)\s*\}\}",
                                       lambda m: str(inputs[m.group(1)]["default"]), step["run"]))
    return commands


def _accel_options() -> set[str]:
    from pytest_accel import options

    return {value for value in vars(options).values() if isinstance(value, str) and value.startswith("--accel-")}


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_example_workflow_parses_and_passes_only_options_that_exist(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow["name"] and workflow["jobs"], path
    known = _accel_options()
    for command in _runs(workflow):
        for option in re.findall(r"(--accel-[a-z-]+)", command):
            assert option in known, f"{path.name}: {option} is no option of the plugin"


def test_the_ab_upgrade_workflow_runs_a_comparison_this_version_takes() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "ab-upgrade.yml").read_text())
    inputs = workflow[True]["workflow_dispatch"]["inputs"]
    a, b = Requirement(inputs["a"]["default"]), Requirement(inputs["b"]["default"])
    assert a.name == b.name and a.specifier != b.specifier, "A and B: two versions of one package"
    commands = _runs(workflow)
    [ab] = [c for c in commands if "pytest-accel ab" in c]
    argv = shlex.split(ab)
    assert argv[0].endswith("/pytest-accel")
    args = build_parser().parse_args(argv[1:])
    assert args.run.__name__ == "run_command" and args.pairs >= 12 and args.threshold > 0
    made = " ".join(commands[:commands.index(ab)])
    for python in (args.a_python, args.b_python):
        assert f"python3 -m venv {python.split('/')[0]}" in made, f"{python} is not made by an earlier step"
    pytest_args = args.pytest_args[1:]
    files = [arg for arg in pytest_args if arg.endswith(".py")]
    assert files and all((ROOT / f).is_file() for f in files), files
    expression = pytest_args[pytest_args.index("-k") + 1]
    source = "\n".join((ROOT / f).read_text() for f in files)
    names = [word for word in re.findall(r"\w+", expression) if word not in ("and", "or", "not")]
    assert all(f"def {name}" in source or re.search(rf"def \w*{name}\w*\(", source) for name in names), names


def _matrix_commands(workflow: dict[str, Any], job: str) -> list[str]:
    """The job's commands once per matrix entry, ${{ matrix.X }} replaced by the entry's value."""
    include = workflow["jobs"][job]["strategy"]["matrix"]["include"]
    commands = []
    for entry in include:
        def value(match: re.Match[str], entry: dict[str, Any] = entry) -> str:
            return str(entry[match.group(1)])

        for step in workflow["jobs"][job]["steps"]:
            if "run" in step:
                commands.append(re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", value, step["run"]))
    return commands


def test_the_fleet_workflow_fans_reports_in_to_one_merged_comparison() -> None:
    from pytest_accel.options import OPT_WORKER_PER_DEVICE

    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "fleet.yml").read_text())
    suites, merge = workflow["jobs"]["suites"], workflow["jobs"]["merge"]
    runners = [entry["runner"] for entry in suites["strategy"]["matrix"]["include"]]
    assert len(runners) >= 3 and "${{ matrix.runner }}" in str(suites["runs-on"])
    assert "PYTEST_ACCEL_MACHINE" in suites["env"]
    uploads = [s for s in suites["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    [upload] = uploads
    assert upload["with"]["name"].startswith("report-") and upload.get("if") == "always()"
    for command in _matrix_commands(workflow, "suites"):
        if "pytest suites" not in command:
            continue
        argv = shlex.split(re.sub(r"\$\{\{[^}]*\}\}", "X", command))
        report = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--accel-report="))
        assert report.startswith("reports/") and upload["with"]["path"].startswith("reports/")
        if "cuda:*" in command:
            assert OPT_WORKER_PER_DEVICE in argv and "-n" in argv
    assert merge["needs"] == "suites" and merge.get("if") == "always()"
    [download] = [s for s in merge["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact")]
    assert download["with"]["pattern"] == "report-*" and download["with"]["merge-multiple"] is True
    [merged] = [s["run"] for s in merge["steps"] if "pytest-accel report" in s.get("run", "")]
    argv = shlex.split(re.sub(r"\$\{\{[^}]*\}\}", "X", merged))
    args = build_parser().parse_args(argv[1:])
    assert args.run.__name__ == "_report" and args.report == [download["with"]["path"]]
    assert args.reference and args.out
