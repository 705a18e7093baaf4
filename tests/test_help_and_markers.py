"""--help lists every option with its metavar and default; --markers lists both markers with signatures."""

from __future__ import annotations

import pytest

from pytest_accel import options


def test_help_lists_every_option_with_its_default(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = " ".join(result.stdout.str().split())
    assert "pytest-accel: accelerator conformance and performance" in text
    names = [value for name, value in vars(options).items() if name.startswith("OPT_")]
    assert len(names) == 30
    for name in names:
        assert name in text, name
    for fragment in ("--device=SPEC", "--accel-profile=NAME", "--accel-gate=KINDS", "--accel-tolerance=KEY=VALUE",
                     "--accel-report=PATH", "--accel-html=PATH", "--accel-missing-baseline=MODE",
                     "Default: ini accel_missing_baseline, else warn.",
                     "--accel-summary=FORM", "Default: ini accel_summary, else full under -v, else compact.",
                     "Default: cpu.",
                     "Default: ini accel_profile, else quick on CPU devices, standard on accelerators.",
                     "accel_tolerance_latency",
                     "--accel-allow-tf32 let fp32", "--accel-deterministic enable deterministic"):
        assert fragment in text, fragment


def test_markers_are_registered_with_their_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["@pytest.mark.accel_only(*patterns): run this test only on devices*",
         "@pytest.mark.accel_tolerance(mapping=None, **kinds): tolerances for this test*"]
    )


def test_markers_are_known_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.accel_only("cpu")
        @pytest.mark.accel_tolerance(latency=0.5)
        def test_marked():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)
