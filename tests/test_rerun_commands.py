"""The commands a failure prints must reproduce the run: same variant, same folder, from where pytest was started."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pytest_accel.baselines import write_document
from pytest_accel.options import OPT_MISSING, OPT_UPDATE
from pytest_accel.references import ReferenceStore
from tests.helpers import baseline_files

VARIANT_CONFTEST = """
import pytest

def pytest_addoption(parser):
    parser.addoption("--toy-model", default=None)

@pytest.fixture
def accel_variant(request):
    return request.config.getoption("--toy-model")
"""

VALUE_TEST = """
from pathlib import Path
from pytest_accel.metrics import Metric

def test_accuracy(accel):
    value = float(Path(__file__).with_name("value.txt").read_text())
    accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"))
"""


def _printed_update(stdout: str) -> list[str]:
    match = re.search(r"update:\s+(.*)$", stdout, re.MULTILINE)
    assert match, stdout
    return shlex.split(match.group(1))


def test_update_command_keeps_suite_options_and_works_from_a_sub_folder(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(VARIANT_CONFTEST)
    sub = pytester.mkdir("sub")
    (sub / "test_toy.py").write_text(VALUE_TEST)
    (sub / "value.txt").write_text("0.9")
    monkeypatch.chdir(sub)
    common = ["test_toy.py", "--toy-model=big", "-p", "no:cacheprovider"]
    pytester.runpytest(*common, f"{OPT_MISSING}=record").assert_outcomes(passed=1)

    (sub / "value.txt").write_text("0.5")
    failed = pytester.runpytest(*common, f"{OPT_MISSING}=fail")
    failed.assert_outcomes(failed=1)
    command = _printed_update(failed.stdout.str())
    assert command[:2] == ["pytest", "test_toy.py::test_accuracy[cpu]"]
    assert "--toy-model=big" in command and OPT_UPDATE in command and f"{OPT_MISSING}=fail" not in command

    pytester.runpytest(*command[1:]).assert_outcomes(passed=1)  # run as printed, from the same folder
    [path] = baseline_files(pytester.path)
    assert path.name == "test_accuracy@big.json"
    pytester.runpytest(*common, f"{OPT_MISSING}=fail").assert_outcomes(passed=1)


def test_a_damaged_reference_names_the_command_that_records_references(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path / "baselines" / "reference")
    path = store.path("detection", "shapes")
    write_document(path, {"measured": {"model": "m"}}, {})
    path.write_text(path.read_text()[:-20])  # cut short
    with pytest.raises(Exception, match=r"never written by --accel-update-baselines: re-record it with: "
                       r"pytest-accel detection-reference --data d.yaml --reference-dir .*reference --force"):
        store.find("detection", "shapes", {"model": "m"}, ["--data", "d.yaml"])
