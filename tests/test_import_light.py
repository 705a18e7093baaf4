"""Loading the plugin, and running pytest with it on tests that need no device, imports no heavy stack."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

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



@pytest.mark.parametrize("module", ["pytest_accel.options", "pytest_accel.option_readers"])
def test_the_options_import_no_report_module(module: str) -> None:
    """Options sit below the reports: neither loading them nor reading them (--accel-html's matplotlib check
    included, which imports lazily) reaches report code."""
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('pytest_accel.report')))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == ""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and name.startswith("pytest_accel.report")]
