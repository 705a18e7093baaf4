"""With pytest-html writing its report (--html), each test's charts are attached to it as SVG images through its
documented ``report.extras``; without --html nothing is registered and nothing is drawn."""

from __future__ import annotations

import base64
import html
import re

import pytest

from pytest_accel.options import OPT_DEVICE

pytest.importorskip("pytest_html", reason="pytest-html is in the test extra: pip install -e '.[test]'")

SUITE = """
import time
from pytest_accel.metrics import Metric

def test_latency(device, accel):
    accel.check(*accel.measure_latency("toy", lambda: time.sleep(0.001)).metrics())

def test_parity(device, accel):
    accel.check(Metric("toy.rel_error", 1e-7, "", "parity", "lower", limit=1e-4))

def test_plain():
    pass
"""

CHARTS_PLUGIN = "accel-pytest-html-charts"


def test_each_tests_charts_become_svg_extras_in_pytest_htmls_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy=SUITE)
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-profile=quick", "--html=ph.html",
                                "--self-contained-html")
    result.assert_outcomes(passed=3)
    page = html.unescape((pytester.path / "ph.html").read_text(encoding="utf-8"))
    images = [base64.b64decode(data).decode("utf-8")
              for data in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)]
    # test_latency: the distribution of its rounds (its latency and throughput share them); test_parity: its parity
    assert len(images) == 2
    assert all(image.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in image for image in images)
    assert "test_latency  toy rounds" in images[0] and "toy.rel_error" in images[1]


def test_nothing_is_registered_without_pytest_htmls_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        f"""
        def pytest_sessionfinish(session):
            print("CHARTS:", session.config.pluginmanager.has_plugin({CHARTS_PLUGIN!r}))
        """
    )
    pytester.makepyfile("def test_plain():\n    pass\n")
    without = pytester.runpytest("-s")
    without.stdout.fnmatch_lines(["*CHARTS: False*"])
    with_report = pytester.runpytest("-s", "--html=ph.html")
    with_report.stdout.fnmatch_lines(["*CHARTS: True*"])
