"""What pyproject.toml says is supported and what tox.ini tests cannot drift apart: every Python classifier has a tox
env in the matrix label, every tox env named for a Python runs one that is declared, requires-python starts at the
lowest declared Python, and the pytest-min env pins the lowest pytest, pytest-benchmark, pytest-xdist and pytest-html
that pyproject.toml accepts (docs/testing-matrix.md)."""

from __future__ import annotations

import configparser
import itertools
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: (3\.\d+)")
#: a tox factor that names a CPython version: py310, py3.10
PYTHON_FACTOR = re.compile(r"py(3)\.?(\d+)")
MATRIX_LABEL = "matrix"
PYTEST_MIN_ENV = "pytest-min"
#: the pytest side whose lowest accepted release the pytest-min env runs: the dependencies, and the test extra's plugins
FLOOR_PINNED = ("pytest", "pytest-benchmark", "pytest-xdist", "pytest-html")


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _tox_ini() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string((REPO / "tox.ini").read_text(encoding="utf-8"))
    return parser


def expand_generative(name: str) -> list[str]:
    """tox's generative names: ``py3{10,11}-x`` is ``py310-x`` and ``py311-x``."""
    parts = re.split(r"\{([^{}]*)\}", name)
    choices = [[part] if index % 2 == 0 else [c.strip() for c in part.split(",")] for index, part in enumerate(parts)]
    return ["".join(combination) for combination in itertools.product(*choices)]


def _split_list(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", value) if item]


def tox_envs(parser: configparser.ConfigParser) -> dict[str, configparser.SectionProxy]:
    envs: dict[str, configparser.SectionProxy] = {}
    for section in parser.sections():
        if section.startswith("testenv:"):
            for name in expand_generative(section.removeprefix("testenv:")):
                envs[name] = parser[section]
    return envs


def tox_labels(parser: configparser.ConfigParser) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for line in parser.get("tox", "labels", fallback="").splitlines():
        if "=" in line:
            label, _, envs = line.partition("=")
            labels[label.strip()] = [env for item in _split_list(envs) for env in expand_generative(item)]
    return labels


def env_python(name: str, section: configparser.SectionProxy) -> str | None:
    """The Python an env runs: named by a factor of its name, else by its base_python (``py311``), else none."""
    for factor in name.split("-"):
        if match := PYTHON_FACTOR.fullmatch(factor):
            return ".".join(match.groups())
    base = section.get("base_python", section.get("basepython", "")).strip()
    if match := PYTHON_FACTOR.fullmatch(base):
        return ".".join(match.groups())
    return None


def declared_pythons(project: dict) -> set[str]:
    return {match[1] for c in project["classifiers"] if (match := PYTHON_CLASSIFIER.fullmatch(c))}


def test_every_declared_python_has_a_tox_env_in_the_matrix() -> None:
    declared = declared_pythons(_pyproject()["project"])
    parser = _tox_ini()
    envs = tox_envs(parser)
    matrix = tox_labels(parser)[MATRIX_LABEL]
    assert declared, "no 'Programming Language :: Python :: 3.X' classifier"
    for version in sorted(declared, key=Version):
        env = "py" + version.replace(".", "")
        assert env in envs, f"Python {version} is declared in pyproject.toml's classifiers but tox.ini has no {env} env"
        assert env in matrix, f"tox.ini's {env} env is not in the {MATRIX_LABEL!r} label"
    for env in matrix:
        assert env in envs, f"the {MATRIX_LABEL!r} label names {env}, which tox.ini does not define"


def test_every_tox_python_is_declared() -> None:
    """An env on a Python the classifiers leave out (or a classifier removed after its Python failed) shows here."""
    declared = declared_pythons(_pyproject()["project"])
    for name, section in tox_envs(_tox_ini()).items():
        version = env_python(name, section)
        assert version is None or version in declared, (
            f"tox.ini's {name} env runs Python {version}, which pyproject.toml's classifiers do not declare")


def test_requires_python_starts_at_the_lowest_declared_python() -> None:
    project = _pyproject()["project"]
    declared = sorted(declared_pythons(project), key=Version)
    allowed = SpecifierSet(project["requires-python"])
    for version in declared:
        assert allowed.contains(version), f"requires-python {allowed} excludes the declared Python {version}"
    below = Version(declared[0]).minor - 1
    assert not allowed.contains(f"3.{below}"), (
        f"requires-python {allowed} admits Python 3.{below}, below the lowest declared ({declared[0]})")


def _floor(requirement: Requirement) -> str | None:
    return next((spec.version for spec in requirement.specifier if spec.operator == ">="), None)


@pytest.mark.parametrize("package", FLOOR_PINNED)
def test_pytest_min_env_pins_the_declared_floor(package: str) -> None:
    """Raising a floor in pyproject.toml without the env (or the env without the floor) leaves the lowest accepted
    release untested."""
    project = _pyproject()["project"]
    declared = [Requirement(line) for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    floor = _floor(next(r for r in declared if r.name == package))
    deps = [Requirement(line) for line in tox_envs(_tox_ini())[PYTEST_MIN_ENV].get("deps", "").splitlines() if line]
    pins = [spec for r in deps if r.name == package for spec in r.specifier]
    assert floor is not None, f"pyproject.toml's {package} requirement has no >= floor"
    assert [(spec.operator, Version(spec.version)) for spec in pins] == [("==", Version(floor))], (
        f"pyproject.toml accepts {package}>={floor}; tox's {PYTEST_MIN_ENV} env pins {[str(s) for s in pins]}")


def test_expand_generative() -> None:
    assert expand_generative("py3{10, 11}-x{a,b}") == ["py310-xa", "py310-xb", "py311-xa", "py311-xb"]
    assert expand_generative("lint") == ["lint"]
