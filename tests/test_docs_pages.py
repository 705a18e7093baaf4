"""The README and the pages under docs/ stay true to the project: every relative link finds its file and heading,
every registered `--accel-*` option and `accel_*` ini key is in docs/options.md, and docs/installing.md names every
extra (`all` with what pyproject.toml puts in it) and every tox env."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPTIONS_PAGE = ROOT / "docs" / "options.md"
INSTALLING_PAGE = ROOT / "docs" / "installing.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The page without its fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```$", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return {_anchor(match[1]) for match in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_finds_its_file_and_heading(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no such heading in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_anchors_are_github_s() -> None:
    assert _anchor("5. A manifest") == "5-a-manifest"
    assert _anchor("How the gate decides") == "how-the-gate-decides"
    assert _anchor("Recording and gating baselines: `--accel-record-run`") == (
        "recording-and-gating-baselines---accel-record-run")


def test_every_registered_option_and_ini_key_is_on_the_options_page(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    help_text = result.stdout.str()
    options = set(re.findall(r"(--accel-[a-z0-9-]+)", help_text))
    ini_keys = set(re.findall(r"^  (accel_[a-z0-9_]+)", help_text, re.MULTILINE))
    assert len(options) > 15 and len(ini_keys) > 10, "the test reads the wrong part of --help"
    page = OPTIONS_PAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"`(--accel-[a-z0-9-]+|accel_[a-z0-9_]+)[ `=]", page))
    assert not options - named, f"options missing from {OPTIONS_PAGE.name}: {sorted(options - named)}"
    assert not ini_keys - named, f"ini keys missing from {OPTIONS_PAGE.name}: {sorted(ini_keys - named)}"
    gone = {name for name in named if name.startswith("--") and name not in options}
    assert not gone, f"{OPTIONS_PAGE.name} names options that are not registered: {sorted(gone)}"


def _extras() -> dict[str, list[str]]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    extras: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    return extras


def _installing_rows() -> dict[str, str]:
    return {match[1]: match[2] for match in re.finditer(r"^\| `([a-z0-9-]+)` \| ([^|]+) \|",
                                                        INSTALLING_PAGE.read_text(encoding="utf-8"), re.MULTILINE)}


def test_the_extras_table_names_every_extra_and_what_all_brings() -> None:
    extras, rows = _extras(), _installing_rows()
    assert not set(extras) - set(rows), f"extras missing from {INSTALLING_PAGE.name}: {sorted(set(extras) - set(rows))}"
    [within] = [re.search(r"\[(.+)\]", requirement)[1] for requirement in extras["all"]]  # type: ignore[index]
    assert set(re.findall(r"`([a-z0-9-]+)`", rows["all"])) == set(within.split(","))


def test_every_tox_env_is_named() -> None:
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = [section.split(":", 1)[1] for section in tox.sections() if section.startswith("testenv:")]
    page = INSTALLING_PAGE.read_text(encoding="utf-8")
    missing = [env for env in envs if f"-e {env}`" not in page]
    assert envs and not missing, f"tox envs missing from {INSTALLING_PAGE.name}: {missing}"
