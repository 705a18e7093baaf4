"""The README starts with the two set-up commands; its test command is `bash .ci/run`, which runs every step and
fails on the first failing one (pytest's 5, "no tests ran", included); its sample output and every figure it quotes
are those tools/readme_sample.py wrote from a real run, so neither can go stale unnoticed."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
MAX_README_LINES = 300


def _sample_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_sample", ROOT / "tools" / "readme_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sample = _sample_script()


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _facts() -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(sample.FACTS_FILE.read_text(encoding="utf-8"))
    return facts


def _code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block, in order."""
    return [(match[1], match[2]) for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)]


def test_the_readme_is_short() -> None:
    lines = len(_readme().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; reference material belongs in docs/"


def test_the_readme_starts_with_the_main_command_then_the_test_command() -> None:
    main, tests = _code_blocks(_readme())[:2]
    suites = " ".join(sample.SUITES_ARGS)
    setup = "python3 -m venv .venv && .venv/bin/pip install -e '.[all]'"
    assert main == ("bash", f"{setup} && .venv/bin/pytest {suites}\n")
    assert tests == ("bash", "bash .ci/run\n")


def test_ci_run_sets_up_and_runs_every_step_one_a_line() -> None:
    text = CI_RUN.read_text(encoding="utf-8")
    assert CI_RUN.stat().st_mode & stat.S_IXUSR
    assert "set -euo pipefail" in text
    steps = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert not [step for step in steps if "&&" in step or "||" in step], "one step a line: set -e stops at a failure"
    suites = " ".join(sample.SUITES_ARGS)
    for step in ("python3 -m venv .venv", ".venv/bin/pip install -e '.[test,lint]'", ".venv/bin/ruff check .",
                 ".venv/bin/mypy", ".venv/bin/pytest tests",
                 f".venv/bin/pytest {suites} --accel-gate=accuracy,parity,convergence"):
        assert step in steps, step


def _run_ci_with_stubs(tmp_path: Path, pytest_status: dict[str, int]) -> tuple[int, list[str]]:
    """.ci/run copied into an empty checkout, every program it starts replaced by a stub that logs its arguments;
    the stub pytest exits with ``pytest_status[first argument]``."""
    checkout, stubs, log = tmp_path / "checkout", tmp_path / "stubs", tmp_path / "calls.log"
    (checkout / ".ci").mkdir(parents=True)
    (checkout / ".ci" / "run").write_text(CI_RUN.read_text(encoding="utf-8"), encoding="utf-8")
    stubs.mkdir()
    venv_bin = checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    statuses = " ".join(f"{name}) exit {code};;" for name, code in pytest_status.items())
    programs = {stubs / "python3": "", stubs / "apt-get": "", venv_bin / "pip": "", venv_bin / "ruff": "",
                venv_bin / "mypy": "", venv_bin / "pytest": f'case "$1" in {statuses} esac\n'}
    for path, body in programs.items():
        path.write_text(f'#!/bin/sh\necho "{path.name} $*" >> "{log}"\n{body}exit 0\n', encoding="utf-8")
        path.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", str(checkout / ".ci" / "run")], env=env, capture_output=True, text=True,
                            timeout=60)
    return result.returncode, log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_ci_run_runs_the_steps_in_order(tmp_path: Path) -> None:
    status, calls = _run_ci_with_stubs(tmp_path, {})
    assert status == 0
    names = [call.split()[0] for call in calls if not call.startswith("apt-get")]
    assert names == ["python3", "pip", "ruff", "mypy", "pytest", "pytest"]
    assert calls[-1].startswith(f"pytest {' '.join(sample.SUITES_ARGS)} --accel-gate=")


@pytest.mark.parametrize("failing", ["tests", "suites"])
def test_ci_run_fails_when_pytest_collects_nothing(tmp_path: Path, failing: str) -> None:
    status, calls = _run_ci_with_stubs(tmp_path, {failing: int(pytest.ExitCode.NO_TESTS_COLLECTED)})
    assert status == pytest.ExitCode.NO_TESTS_COLLECTED
    assert calls[-1].startswith(f"pytest {failing}"), "nothing runs after the failing step"


def _sample_block(text: str) -> str:
    begin, end = sample.SAMPLE_BEGIN, sample.SAMPLE_END
    assert text.count(begin) == 1 and text.count(end) == 1, "one sample block, between its markers"
    return str(text.split(begin)[1].split(end)[0])


def test_the_readme_shows_the_committed_sample_verbatim() -> None:
    committed = sample.SUMMARY_FILE.read_text(encoding="utf-8")
    assert _sample_block(_readme()) == sample.sample_block(committed), (
        f"the README's sample differs from {sample.SUMMARY_FILE.relative_to(ROOT)}: rerun tools/readme_sample.py")


def test_the_sample_is_the_excerpt_of_the_whole_output() -> None:
    output = sample.OUTPUT_FILE.read_text(encoding="utf-8")
    assert sample.excerpt(output) == sample.SUMMARY_FILE.read_text(encoding="utf-8")
    assert "/tmp/" not in output, "temporary paths are normalised"


def test_the_main_commands_whole_output_fits_one_screen() -> None:
    """Made by a real run of the main command: at most 80 lines (with the JSON report's line the script adds; a run
    whose verdicts are not all plain passes explains each in about three lines), none
    over 160 characters, and no pytest-benchmark table beside the summary."""
    lines = sample.OUTPUT_FILE.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 80, len(lines)
    assert max(len(line) for line in lines) <= 160, max(lines, key=len)
    assert not any(line.startswith(("benchmark: ", "Name (time in")) for line in lines)


def test_the_facts_are_those_of_the_committed_output() -> None:
    facts = _facts()
    counts, seconds = sample.outcome(sample.OUTPUT_FILE.read_text(encoding="utf-8"))
    assert facts["run"]["outcomes"] == counts
    assert facts["run"]["wall_s"] == seconds
    assert facts["quote"] == sample.quotes(facts["run"]), "facts.json's quotes are derived from its run figures"


def _quoted(path: Path) -> list[tuple[str, str]]:
    return [(match["name"], match["text"]) for match in sample.FACT.finditer(path.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", sample.pages(), ids=lambda path: path.name)
def test_every_quoted_figure_is_the_run_s(page: Path) -> None:
    quote = _facts()["quote"]
    wrong = [f"{name}: {text!r}, facts.json has {quote.get(name)!r}" for name, text in _quoted(page)
             if quote.get(name) != text]
    assert not wrong, f"{page.relative_to(ROOT)} quotes figures that are not docs/sample/facts.json's: {wrong}"


def test_the_readme_quotes_the_run_s_headline_figures() -> None:
    quoted = {name for name, _ in _quoted(README)}
    devices = [arg.split("=", 1)[1] for arg in sample.SUITES_ARGS if arg.startswith("--device=")]
    for name in ("date", "cpu", "wall", "passed", "skipped", *(f"model_latency_ms[{d}]" for d in devices)):
        assert name in quoted, name


def test_rerunning_the_script_on_the_committed_files_changes_no_page() -> None:
    summary = sample.SUMMARY_FILE.read_text(encoding="utf-8")
    changed = sorted(str(page.relative_to(ROOT)) for page in sample.rewritten_pages(summary, _facts()["quote"]))
    assert not changed, "pages out of step with docs/sample/: rerun tools/readme_sample.py"
