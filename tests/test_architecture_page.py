"""docs/architecture.md names every module of the package with its job, every console-script subcommand, every
fixture, marker, hook and entry-point group: a module or command added without a line there fails here; no module
is over 450 lines."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_accel"
PAGE = ROOT / "docs" / "architecture.md"


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _named(text: str) -> set[str]:
    """Everything the page writes as inline code: `report/html.py`, `pytest-accel devices`, `accel_only`."""
    return set(re.findall(r"`([^`\n]+)`", text))


def _modules() -> list[str]:
    return sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                  if "__pycache__" not in path.parts and path.stat().st_size > 0)


def test_every_module_is_named_with_its_job() -> None:
    rows = {match.group(1): match.group(2).strip()
            for match in re.finditer(r"^\| `([^`]+\.py)` \| (.+) \|$", _page(), re.MULTILINE)}
    unnamed = [module for module in _modules() if module not in rows]
    assert not unnamed, f"modules missing from the table in {PAGE}: {', '.join(unnamed)}"
    assert all(len(job) > 10 for job in rows.values()), "every row says the module's job"
    gone = [module for module in rows if not (PACKAGE / module).is_file()]
    assert not gone, f"{PAGE} names modules that do not exist: {', '.join(gone)}"


def test_every_subcommand_is_named() -> None:
    from pytest_accel.cli import build_parser

    commands = next(action for action in build_parser()._actions  # argparse keeps its subparsers private
                    if isinstance(action, argparse._SubParsersAction))
    named = _named(_page())
    missing = [name for name in commands.choices if f"pytest-accel {name}" not in named]
    assert not missing, f"subcommands missing from {PAGE}: {', '.join(missing)}"


def _functions(module: Path, decorated_with: str | None = None, prefix: str = "") -> list[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith(prefix):
            continue
        decorators = [ast.unparse(d) for d in node.decorator_list]
        if decorated_with is None or any(d.startswith(decorated_with) for d in decorators):
            found.append(node.name)
    return found


@pytest.mark.parametrize(("what", "names"), [
    ("fixtures", lambda: _functions(PACKAGE / "plugin.py", "pytest.fixture")),
    ("hooks", lambda: _functions(PACKAGE / "hookspecs.py", prefix="pytest_accel_")),
    ("markers", lambda: [m.split("(")[0] for m in __import__("pytest_accel.plugin").plugin.MARKERS]),
    ("entry-point groups", lambda: ["pytest11", "pytest_accel.backends"]),
])
def test_every_extension_point_is_named(what: str, names: Callable[[], list[str]]) -> None:
    found = names()
    assert found, f"no {what} found: the test reads the wrong place"
    spans = _named(_page())
    missing = [name for name in found if not any(re.match(rf"{re.escape(name)}\b", span) for span in spans)]
    assert not missing, f"{what} missing from {PAGE}: {', '.join(missing)}"


#: The architecture pass's limits: a module longer than this has more than one job; `type: ignore` hides a type the
#: code should state.
MAX_MODULE_LINES = 450
MAX_TYPE_IGNORES = 3


def test_no_module_outgrows_one_job_and_types_are_not_silenced() -> None:
    modules = sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)
    too_long = {str(path.relative_to(PACKAGE)): lines for path in modules
                if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
    ignores = [f"{path.relative_to(PACKAGE)}:{number}" for path in modules
               for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if "type: ignore" in line]
    assert len(ignores) <= MAX_TYPE_IGNORES, ignores
