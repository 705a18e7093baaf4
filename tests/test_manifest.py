"""Backend manifests: expected failures run as xfail, unsupported tests skip with the reason, an unexpected pass is
reported (and fails in strict mode), tolerance overrides apply to the manifest's devices only, and a coverage floor
fails a full run that executed fewer tests than committed."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from pytest_accel.manifest import load_manifest
from pytest_accel.options import OPT_DEVICE, OPT_MISSING, OPT_REPORT
from tests.helpers import load_json

TESTS = """
import pytest
from pytest_accel.metrics import Metric

@pytest.fixture(params=["fp32", "bf16"])
def dtype(request):
    return request.param

def test_parity(device, dtype):
    assert dtype == "fp32", "bf16 rounding"

def test_ok(device):
    pass

def test_training(device):
    raise AssertionError("would train")

def test_accuracy(device, accel):
    accel.check(Metric("toy.accuracy", 0.95, "", "accuracy", "higher"))
"""


def _manifest(pytester: pytest.Pytester, body: str, name: str = "manifest.toml") -> Path:
    path = pytester.path / name
    path.write_text(body)
    return path


BASIC = """
[manifest]
backend = "onnxruntime"

[[expected_failures]]
test = "test_parity"
dtype = "bf16"
reason = "bf16 head rounding (NPU-123)"

[[unsupported]]
test = "*::test_training"
reason = "no training here"
"""


def test_expected_failures_run_as_xfail_and_unsupported_tests_skip_on_the_manifests_devices_only(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=TESTS.replace("test_accuracy", "_not_collected"))
    _manifest(pytester, BASIC)
    result = pytester.runpytest("-rsx", f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml")
    # cpu: the manifest does not speak for torch devices, so its bf16 parity and training fail as usual
    result.assert_outcomes(passed=4, failed=2, xfailed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "manifest *manifest.toml: 3 test(s) ran, 1 expected failure(s), 1 unsupported",
        "SKIPPED [1] test_toy.py: unsupported (manifest manifest.toml): no training here",
        "XFAIL test_toy.py::test_parity[bf16-ort-cpu] - expected failure (manifest manifest.toml): bf16 head "
        "rounding (NPU-123)",
    ])
    result.stdout.no_fnmatch_line("*test_parity?fp32-ort-cpu? XFAIL*")


def test_an_unexpected_pass_is_reported_and_fails_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=TESTS.replace('assert dtype == "fp32", "bf16 rounding"', "pass")
                        .replace("test_accuracy", "_not_collected"))
    body = BASIC.replace('backend = "onnxruntime"', 'backend = "onnxruntime"\nstrict = STRICT')
    _manifest(pytester, body.replace("STRICT", "false"))
    lenient = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml")
    lenient.assert_outcomes(passed=2, xpassed=1, skipped=1)
    assert lenient.ret == pytest.ExitCode.OK
    lenient.stdout.fnmatch_lines(["  !! unexpected pass, reported: test_toy.py::test_parity[bf16-ort-cpu]: remove it "
                                  "from the manifest's expected failures"])
    _manifest(pytester, body.replace("STRICT", "true"))
    strict = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml")
    strict.assert_outcomes(passed=2, failed=1, skipped=1)
    strict.stdout.fnmatch_lines(["?XPASS(strict)? expected failure (manifest manifest.toml): bf16 head rounding*",
                                 "  !! unexpected pass, failed (strict): test_toy.py::test_parity[bf16-ort-cpu]*"])


def test_tolerance_overrides_apply_to_the_manifests_devices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=TESTS.replace("def test_parity", "def _p").replace("def test_training", "def _t"))
    pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", f"{OPT_MISSING}=record").assert_outcomes(passed=4)
    pytester.makepyfile(test_toy=TESTS.replace("0.95", "0.93").replace("def test_parity", "def _p")
                        .replace("def test_training", "def _t"))
    _manifest(pytester, '[manifest]\nbackend = "onnxruntime"\n\n[tolerances]\n"toy.accuracy" = 0.05\n')
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml",
                                f"{OPT_REPORT}=r.json")
    result.assert_outcomes(passed=3, failed=1)  # -2.1%: beyond the default 1% on cpu, within the manifest's 5%
    verdicts = {r["device"]: m for r in load_json(pytester.path / "r.json")["results"] for m in r["metrics"]}
    assert verdicts["cpu"]["verdict"] == "regression" and verdicts["cpu"]["tolerance_source"] == "default"
    assert verdicts["ort:cpu"]["verdict"] == "pass"
    assert verdicts["ort:cpu"]["tolerance_source"] == "manifest manifest.toml"


def test_a_full_run_below_the_coverage_floor_fails_and_a_partial_run_says_why_it_is_not_held(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n\ndef test_two(device):\n    pass\n")
    _manifest(pytester, '[manifest]\nbackend = "onnxruntime"\nmin_tests = 3\n')
    full = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml")
    full.assert_outcomes(passed=2)
    assert full.ret == pytest.ExitCode.TESTS_FAILED
    full.stdout.fnmatch_lines(["manifest *manifest.toml: 2 test(s) ran (floor 3 per device), 0 expected "
                               "failure(s), 0 unsupported",
                               "  !! COVERAGE FLOOR: 2 test(s) ran on ort:cpu, fewer than the 3 the manifest commits "
                               "to: the run fails"])
    partial = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml", "-k", "one")
    assert partial.ret == pytest.ExitCode.OK
    partial.stdout.fnmatch_lines(["*a partial run*the coverage floor is not applied*"])
    _manifest(pytester, '[manifest]\nbackend = "onnxruntime"\nmin_tests = 2\n')
    assert pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml").ret == pytest.ExitCode.OK


def test_a_run_the_manifest_fails_says_so_in_its_last_lines(pytester: pytest.Pytester) -> None:
    """Found by a black-box attack: the coverage floor failed the run (exit 1) under a closing line of `2 passed`."""
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n\ndef test_two(device):\n    pass\n")
    _manifest(pytester, '[manifest]\nbackend = "onnxruntime"\nmin_tests = 3\n')
    result = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    last = result.stdout.lines[-2:]
    assert "pytest-accel: manifest manifest.toml: 2 test(s) ran on ort:cpu, below its coverage floor of 3" in last[0]
    assert fnmatch.fnmatch(last[1], "*2 passed*, 1 manifest failed in *"), last  # (pytest's warnings between)


def test_a_strict_pattern_that_names_no_test_fails_a_whole_run(pytester: pytest.Pytester) -> None:
    """Found by a black-box attack: a strict manifest's pattern that matched nothing (a renamed test, a typo) was
    silently ignored, so the manifest no longer said what the device fails."""
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n\ndef test_two(device):\n    pass\n")
    _manifest(pytester, '[manifest]\nbackend = "onnxruntime"\nstrict = true\n\n[[unsupported]]\ntest = "test_two"\n'
                        'reason = "r"\n\n[[expected_failures]]\ntest = "test_renamed"\nreason = "r"\n')
    result = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*!! STALE PATTERN: expected_failures #1 test = 'test_renamed' names no test of this "
                                 "run; the manifest is strict: fix or remove the entry",
                                 "*pytest-accel: manifest manifest.toml: expected_failures #1 test = 'test_renamed' "
                                 "names no test of this run (strict)*",
                                 "*1 passed, 1 skipped*, 1 manifest failed*"])
    assert "unsupported #1" not in result.stdout.str()
    narrowed = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml", "-k", "one")
    assert narrowed.ret == pytest.ExitCode.OK, "a partial run cannot tell a stale pattern from an unselected test"
    on_cpu = pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-manifest=manifest.toml")
    assert on_cpu.ret == pytest.ExitCode.OK, "the manifest does not speak for cpu"


@pytest.mark.workload
def test_the_floor_counts_tests_run_by_xdist_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy="import pytest\n\n@pytest.mark.parametrize('i', range(4))\n"
                                 "def test_one(device, i):\n    pass\n")
    _manifest(pytester, '[manifest]\nbackend = "onnxruntime"\nmin_tests = 4\n')
    result = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.toml", "-n", "2")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["manifest *manifest.toml: 4 test(s) ran (floor 4 per device)*"])


def test_a_backend_brings_its_own_manifest(pytester: pytest.Pytester) -> None:
    _manifest(pytester, '[manifest]\nmin_tests = 1\n\n[[unsupported]]\ntest = "test_two"\nreason = "not on ours"\n',
              name="ours.toml")
    pytester.makeconftest(
        f"""
        from pathlib import Path
        from pytest_accel.devices.onnxruntime import OrtBackend

        class OurBackend(OrtBackend):
            name = "ours"
            manifest_path = Path({str(pytester.path / "ours.toml")!r})

            def parse(self, spec):
                return "ours" if spec == "ours" else None

            def open(self, spec):
                return super().open("ort:cpu")

        def pytest_accel_register_backends(registry):
            registry.register(OurBackend())
        """
    )
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n\ndef test_two(device):\n    pass\n")
    result = pytester.runpytest("-rs", f"{OPT_DEVICE}=ort:cpu")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*unsupported (manifest ours.toml): not on ours"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[manifest]\nbackend = 3\n", "backend must be a backend name such as openvino"),
        ("[manifest]\nmin_tests = 0\n", "min_tests must be a whole number >= 1, got 0"),
        ("[manifest]\nstrict = 'yes'\n", "strict must be true or false, got 'yes'"),
        ("[manifest]\nfloor = 3\n", "unknown key(s) in [manifest]: floor; allowed: backend, devices, "
                                    "min_delegation, min_tests, strict"),
        ("[manifest]\nmin_delegation = 0\n", "min_delegation must be a share of operators above 0 and at most 1 "
                                             "(e.g. 0.7), got 0"),
        ("[manifest]\nmin_delegation = 70\n", "min_delegation must be a share of operators above 0 and at most 1 "
                                              "(e.g. 0.7), got 70"),
        ("[manifest]\nmin_delegation = nan\n", "min_delegation must be a share of operators above 0 and at most "
                                               "1 (e.g. 0.7), got nan"),
        ("[manifest]\nmin_delegation = '0.7'\n", "min_delegation must be a share of operators above 0 and at "
                                                 "most 1 (e.g. 0.7), got '0.7'"),
        ("[manifest]\nmin_delegation = true\n", "min_delegation must be a share of operators above 0 and at most "
                                                "1 (e.g. 0.7), got True"),
        ("[xfail]\n", "unknown section(s) xfail; allowed: expected_failures, floors, manifest, tolerances, "
                       "unsupported"),
        ('[[expected_failures]]\ntest = "test_x"\n', "expected_failures #1 (test_x): 'reason' is required"),
        ('[[unsupported]]\nreason = "r"\n', "unsupported #1: 'test' must name a test pattern"),
        ('[[unsupported]]\ntest = "t"\nreason = "r"\nwhy = 1\n', "unsupported #1: unknown key(s) why"),
        ('[tolerances]\n"toy.accuracy" = "a lot"\n', "toy.accuracy='a lot' is not a number"),
        ("[tolerances]\naccuracy = 2\n", "accuracy=2 is no tolerance for accuracy metrics"),
        ("[tolerances]\nspeed = 0.1\n", "'speed' is neither a metric kind"),
        ("[manifest\n", "not valid TOML"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_file_and_what_is_allowed(tmp_path: Path, body: str,
                                                                        message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(body)
    with pytest.raises(pytest.UsageError) as error:
        load_manifest(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_bad_manifest_stops_the_run_before_any_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy="def test_one(device):\n    pass\n")
    result = pytester.runpytest("--accel-manifest=missing.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: manifest *missing.toml: no such file"])


def test_yaml_manifests_read_the_same(pytester: pytest.Pytester) -> None:
    pytest.importorskip("yaml")
    pytester.makepyfile(test_toy=TESTS.replace("test_accuracy", "_not_collected"))
    (pytester.path / "manifest.yaml").write_text(
        "manifest: {backend: onnxruntime}\n"
        "expected_failures: [{test: test_parity, dtype: bf16, reason: bf16 head rounding}]\n"
        "unsupported: [{test: '*::test_training', reason: no training here}]\n"
    )
    result = pytester.runpytest(f"{OPT_DEVICE}=ort:cpu", "--accel-manifest=manifest.yaml")
    result.assert_outcomes(passed=2, xfailed=1, skipped=1)
