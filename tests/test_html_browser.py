"""The page as a browser shows it: headless Chromium renders the hand-made report's page offline, the screenshot
is not blank and the SVG charts are in the rendered DOM."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_accel.report.html import write_html
from tests.html_reports import toy_report

CHROMIUM = Path("/usr/bin/chromium")
#: the page's charts: speed-up, four distributions, batch, curves, parity (see test_html_report.py)
CHARTS = 8

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason=f"no {CHROMIUM}: apt-get install -y chromium (CI installs it)"),
              pytest.mark.workload]  # a browser process per test


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # no network, no first-run work, no GPU: what a sandboxed CI runner can do
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("page")
    path = folder / "report.html"
    write_html(path, toy_report(folder / "baselines"))
    return path


def test_the_screenshot_shows_the_page(page: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    screenshot = tmp_path / "page.png"
    chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1400,3000", page.as_uri())
    pixels = imread(screenshot)[..., :3]  # RGB in 0..1
    assert pixels.shape[:2] == (3000, 1400)
    not_background = (pixels.min(axis=2) < 0.9).mean()  # text, table rules, chart lines and fills
    assert 0.02 < not_background < 0.6, not_background
    assert pixels.std() > 0.05


def test_the_charts_are_in_the_rendered_dom(page: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    assert dom.count("<svg") == CHARTS
    assert "Needs attention" in dom and "speed-up over cpu" in dom
