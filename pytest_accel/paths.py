"""Small path helpers shared by the option readers, the console script and the reports."""

from __future__ import annotations

from pathlib import Path


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
