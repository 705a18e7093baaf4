"""Small path helpers shared by the option readers, the console script, the reports and the workloads' caches."""

from __future__ import annotations

import configparser
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable


def readable_file(text: str | Path, suffixes: tuple[str, ...], kind: str) -> Path:
    """The absolute path of a readable file named ``text`` with one of ``suffixes``, or ValueError saying why not.

    The suffix is checked on the path as given: a link may point at a file of any name.
    """
    given = Path(text).expanduser()
    path = given.absolute()
    if given.suffix.lower() not in suffixes:
        raise ValueError(f"{text}: expected {kind} ({', '.join(suffixes)})")
    if not path.is_file():
        raise ValueError(f"{text}: no such file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise ValueError(f"{text}: cannot be read ({error.strerror})") from None
    return path


def display_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` where it lies below it (shorter in messages), else as it is."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _load_toml(path: Path) -> dict[str, Any] | None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # pytest depends on it there
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pyproject_pytest_table(path: Path) -> dict[str, Any] | None:
    """[tool.pytest.ini_options] (or pytest 9's native [tool.pytest]) of a pyproject.toml, None without one."""
    table = (_load_toml(path) or {}).get("tool", {}).get("pytest")
    if not isinstance(table, dict):
        return None
    options = table.get("ini_options")
    return options if isinstance(options, dict) else table


def pytest_ini_setting(name: str, start: Path) -> tuple[Path, str] | None:
    """(folder of the ini file, value) of ``name`` in the configuration file pytest would use when started in
    ``start``, found as pytest finds it (the first of pytest.toml, pytest.ini, pyproject.toml with a pytest table,
    tox.ini with [pytest], setup.cfg with [tool:pytest], walking up); None where that file does not set it. The
    console script uses it so its folders follow the same settings as the plugin."""
    for folder in (start.resolve(), *start.resolve().parents):
        for file_name in ("pytest.toml", ".pytest.toml"):
            if (folder / file_name).is_file():
                table = (_load_toml(folder / file_name) or {}).get("pytest")
                return _found(folder, table.get(name) if isinstance(table, dict) else None)
        for file_name in ("pytest.ini", ".pytest.ini"):
            if (folder / file_name).is_file():
                return _found(folder, _ini_value(folder / file_name, "pytest", name))
        if (folder / "pyproject.toml").is_file():
            table = _pyproject_pytest_table(folder / "pyproject.toml")
            if table is not None:
                return _found(folder, table.get(name))
        for file_name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
            parser = _read_ini(folder / file_name)
            if parser is not None and parser.has_section(section):
                return _found(folder, parser.get(section, name, fallback=None))
    return None


def _read_ini(path: Path) -> configparser.ConfigParser | None:
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return None
    return parser


def _ini_value(path: Path, section: str, name: str) -> str | None:
    parser = _read_ini(path)
    return parser.get(section, name, fallback=None) if parser is not None and parser.has_section(section) else None


def _found(folder: Path, value: object) -> tuple[Path, str] | None:
    return (folder, str(value).strip()) if value not in (None, "") else None


def write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` with a temporary path beside ``target``, then rename it to ``target``: readers see no file or
    the whole one, and a failed or interrupted ``write`` leaves nothing under ``target``'s name. The file is made
    readable to all (mkstemp's 0600 would keep a shared cache's model from its other users)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o644)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
