"""Shared fixtures of the conformance suites. Their options live in the package (:mod:`pytest_accel.suite_options`);
workloads get plain values from the fixtures here, never options."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_accel.suite_options import (
    DetectionOptions,
    GestureOptions,
    add_suite_options,
    check_cache_writable,
    read_detection_options,
    read_gesture_options,
)

if TYPE_CHECKING:
    from pytest_accel.workloads.detection.quantize import CalibrationSettings

_DETECTION_KEY = pytest.StashKey[DetectionOptions]()
_GESTURE_KEY = pytest.StashKey[GestureOptions]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_suite_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_DETECTION_KEY] = read_detection_options(config)
    config.stash[_GESTURE_KEY] = read_gesture_options(config)


@pytest.hookimpl(trylast=True)  # after -k and -m deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.option.collectonly and any("detection_source" in getattr(item, "fixturenames", ())
                                             for item in items):
        check_cache_writable(config.stash[_DETECTION_KEY])


@pytest.fixture(scope="session")
def gesture_options(pytestconfig: pytest.Config) -> GestureOptions:
    return pytestconfig.stash[_GESTURE_KEY]


@pytest.fixture(scope="session")
def detection_options(pytestconfig: pytest.Config) -> DetectionOptions:
    return pytestconfig.stash[_DETECTION_KEY]


@pytest.fixture(scope="session")
def detection_int8_calibration() -> CalibrationSettings:
    """How the detection suite's int8 models are calibrated; a conftest may override it."""
    from pytest_accel.workloads.detection.quantize import CalibrationSettings

    return CalibrationSettings()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "detection_dtype" in metafunc.fixturenames:
        metafunc.parametrize("detection_dtype", metafunc.config.stash[_DETECTION_KEY].dtypes, scope="session")
    if "gesture_dtype" in metafunc.fixturenames:
        metafunc.parametrize("gesture_dtype", metafunc.config.stash[_GESTURE_KEY].dtypes, scope="session")
