"""pytest-html's report gets each test's charts: registered only where pytest-html writes a report (``--html``)
and matplotlib is there, as pytest-xdist's hooks are only where xdist runs."""

from __future__ import annotations

import base64
from typing import Any, Generator

import pytest

from pytest_accel.report.document import REPORT_SCHEMA, REPORT_SCHEMA_VERSION, result_entry
from pytest_accel.session import RECORD_KEY


def charts_wanted(config: pytest.Config) -> bool:
    from pytest_accel.optional import matplotlib_missing

    return (config.pluginmanager.hasplugin("html") and bool(config.getoption("htmlpath", None))
            and matplotlib_missing() is None)


class PytestHtmlCharts:
    """After a test's call phase, its charts (those of the HTML report, for this test alone) become SVG images in
    pytest-html's documented ``report.extras``."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        record = item.stash.get(RECORD_KEY, None)
        if report.when != "call" or record is None or not record.verdicts:
            return report
        from pytest_html import extras

        from pytest_accel.baselines import json_safe
        from pytest_accel.report.chart_sections import charts

        one_test: dict[str, Any] = {"schema": REPORT_SCHEMA, "schema_version": REPORT_SCHEMA_VERSION,
                                    "options": {"devices": [record.device.spec]},
                                    "results": [json_safe(result_entry(record))]}
        added = [extras.svg(base64.b64encode(chart.svg.encode("utf-8")).decode("ascii"), name=chart.title)
                 for chart in charts(one_test)]
        vars(report)["extras"] = [*getattr(report, "extras", []), *added]  # pytest-html's documented field
        return report
