"""Conformance scorecards: per device, outcomes per suite and dtype (pass, fail, xfail, unsupported), accuracy
against the reference, parity against its bound with the precision that ran, speed with the speed-up over the first
device; Markdown and JSON; rows in a stable order."""

from __future__ import annotations

import pytest

from pytest_accel.options import OPT_DEVICE
from tests.helpers import load_json

SUITE = """
import time
import pytest
from pytest_accel.metrics import Metric

@pytest.fixture(params=["fp32", "bf16"])
def dtype(request):
    return request.param

def test_accuracy(device, dtype, accel):
    accel.check(Metric("toy.map", 0.83 if dtype == "fp32" else 0.80, "", "accuracy", "higher", expected=0.834,
                       expected_source="reference/toy/model.json"))

def test_parity(device, dtype, accel):
    precision = "bf16" if dtype == "bf16" else "fp32"
    accel.check(Metric("toy.rel_error", 2e-3 if dtype == "bf16" else 1e-7, "", "parity", "lower",
                       limit=3e-2 if dtype == "bf16" else 1e-4, summary={"precision": precision}))

def test_latency(device, accel):
    pause = 0.02 if device.spec == "cpu" else 0.002  # ten times: a busy machine adds to both wake-ups
    accel.check(*accel.measure_latency("toy", lambda: time.sleep(pause)).metrics())

def test_training(device):
    pass

def test_known_bad(device):
    assert device.spec == "cpu"
"""

MANIFEST = """
[manifest]
backend = "onnxruntime"

[[expected_failures]]
test = "test_known_bad"
reason = "tracked as ORT-1"

[[unsupported]]
test = "test_training"
reason = "no training on this provider"
"""


def _run(pytester: pytest.Pytester, folder: str) -> pytest.RunResult:
    return pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=m.toml",
                              f"--accel-scorecard={folder}", "--accel-profile=quick")


@pytest.mark.workload  # seconds of real timing on two devices
def test_a_scorecard_per_device_in_markdown_and_json(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=SUITE)
    (pytester.path / "m.toml").write_text(MANIFEST)
    result = _run(pytester, "cards")
    result.assert_outcomes(passed=10, failed=2, xfailed=1, skipped=1)  # bf16 accuracy: 95.9% of the reference
    result.stdout.fnmatch_lines(["scorecards: cards/cpu-*.md, cards/ort-cpu-*.md (and .json beside each)"])
    [ort_json] = (pytester.path / "cards").glob("ort-cpu-*.json")
    card = load_json(ort_json)
    assert card["device"]["spec"] == "ort:cpu"
    assert card["totals"] == {"passed": 4, "failed": 1, "xfailed": 1, "xpassed": 0, "unsupported": 1, "skipped": 0}
    assert [(s["suite"], s["dtype"], s["passed"], s["failed"]) for s in card["suites"]] == [
        ("toy", "-", 1, 0), ("toy", "bf16", 1, 1), ("toy", "fp32", 2, 0)]
    accuracy = {r["dtype"]: r for r in card["accuracy"]}
    assert accuracy["fp32"]["against"] == "reference" and accuracy["fp32"]["reference"] == 0.834
    assert accuracy["fp32"]["percent_of_reference"] == pytest.approx(100 * 0.83 / 0.834)
    assert accuracy["bf16"]["verdict"] == "regression"
    parity = {r["dtype"]: r for r in card["parity"]}
    assert parity["bf16"]["bound"] == 3e-2 and parity["bf16"]["precision"] == "bf16"
    speed = {r["metric"]: r for r in card["speed"]}
    assert speed["toy.latency"]["speedup_over"] == "cpu" and speed["toy.latency"]["speedup"] > 1.3
    reasons = {(t["test"], t["dtype"]): (t["outcome"], t["reason"]) for t in card["tests"]}
    assert reasons["test_known_bad", "-"] == ("xfailed", "expected failure (manifest m.toml): tracked as ORT-1")
    assert reasons["test_training", "-"] == ("unsupported",
                                             "unsupported (manifest m.toml): no training on this provider")
    assert reasons["test_accuracy", "bf16"][0] == "failed" and "toy.map" in reasons["test_accuracy", "bf16"][1]
    [ort_md] = (pytester.path / "cards").glob("ort-cpu-*.md")
    text = ort_md.read_text()
    for fragment in ("# Conformance scorecard: `ort:cpu`", "| toy | bf16 | 1 | 1 | 0 | 0 | 0 | 0 |",
                     "| toy | fp32 | toy.map | 0.83 | reference 0.834 | 99.5% | pass |",
                     "| toy | bf16 | toy.rel_error | 0.002 | 0.03 | bf16 | pass |",
                     "| toy | - | test_training | unsupported | unsupported (manifest m.toml): no training on this "
                     "provider |"):
        assert fragment in text, fragment
    [cpu_json] = (pytester.path / "cards").glob("cpu-*.json")
    assert load_json(cpu_json)["totals"]["failed"] == 1 and load_json(cpu_json)["totals"]["passed"] == 6


@pytest.mark.workload  # seconds of real timing on two devices, twice
def test_two_scorecards_of_the_same_suite_list_their_rows_in_the_same_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=SUITE)
    (pytester.path / "m.toml").write_text(MANIFEST)
    _run(pytester, "first")
    _run(pytester, "second")

    def rows(folder: str) -> list[list[str]]:
        [path] = (pytester.path / folder).glob("ort-cpu-*.md")
        return [line.split("|")[1:4] for line in path.read_text().splitlines() if line.startswith("| toy")]

    assert rows("first") == rows("second") and len(rows("first")) > 10


def test_a_test_that_skips_itself_is_skipped_not_failed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_meter="""
        import pytest

        def test_energy(device):
            pytest.skip("no energy meter here")
        """)
    pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-scorecard=cards").assert_outcomes(skipped=1)
    [card] = (pytester.path / "cards").glob("*.json")
    [test] = load_json(card)["tests"]
    assert (test["outcome"], test["reason"]) == ("skipped", "no energy meter here")


DELEGATING_SUITE = """
import pytest
from pytest_accel.devices.compiled import Delegation
from pytest_accel.metrics import Metric

def test_parity(device, accel):
    delegation = Delegation(220, 300, 13, {"aten.split": 20, "aten.arange": 40, "aten.softmax": 20})
    accel.check(Metric("toy.delegation_coverage", delegation.coverage, "", "info", "higher",
                       summary=delegation.summary(), sections=("parity",)))

def test_energy(device):
    pytest.skip("no energy meter here")
"""


def test_a_delegation_lists_the_hosts_operators_and_a_skip_inside_a_test_is_no_failure(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=DELEGATING_SUITE)
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-scorecard=cards")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["  1 reported-only metric(s): --accel-summary=full"])  # no matrix of nothing
    [card_md] = (pytester.path / "cards").glob("cpu-*.md")
    text = card_md.read_text()
    assert ("## Delegation\n\n| suite | dtype | operators delegated | partitions | operators left on the host |\n"
            "|---|---|---|---|---|\n| toy | - | 220 of 300 (73.3%) | 13 | aten.arange 40, aten.softmax 20, "
            "aten.split 20 |") in text
    assert "| toy | - | test_energy | skipped | no energy meter here |" in text


@pytest.mark.parametrize(("when", "outcome", "expected"), [("setup", "skipped", "skipped"),
                                                           ("call", "skipped", "skipped"),
                                                           ("call", "failed", "failed"),
                                                           ("call", "passed", "passed")])
def test_a_skip_inside_the_test_counts_as_skipped_not_failed(when: str, outcome: str, expected: str) -> None:
    """test_energy skips in its body on devices without an energy meter: the scorecards of cpu and xla had counted
    it as a failure."""
    from pytest_accel.report.scorecard import _outcome

    longrepr = ("test_x.py", 1, "Skipped: no energy metrics") if outcome == "skipped" else None
    report = pytest.TestReport("test_x.py::test_energy", ("test_x.py", 1, "test_energy"), {}, outcome, longrepr,
                               when)
    assert _outcome(report) == expected
