"""Loading the plugin, and running pytest with it on tests that need no device, imports no heavy stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "onnxruntime", "ultralytics", "mediapipe", "scipy", "pynvml", "matplotlib")


def test_importing_the_plugin_imports_no_heavy_library() -> None:
    code = "import sys, pytest_accel.plugin; print(' '.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == ""


@pytest.mark.workload
def test_a_run_without_device_tests_imports_no_heavy_library(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        f"""
        import sys
        def pytest_sessionfinish(session):
            print("HEAVY:", sorted(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    assert "HEAVY: []" in result.stdout.str()
