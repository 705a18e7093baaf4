"""Who a test is, apart from its device: where its baselines live (:func:`test_location`) and its suite, function and
other parameters (:func:`item_identity`). The checker, the scorecards and the reports all name tests this way."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from pytest_accel.devices import Device


def test_location(item: pytest.Item) -> tuple[str, ...]:
    """Where the test's baselines live under its device key: the test file's rootdir-relative folders and its stem
    without ``test_`` (``suites/test_detection.py`` -> ``("suites", "detection")``), so tests of the same name in
    different files never share a file. A file outside the rootdir (an installed suite run with ``--pyargs``) is
    placed by its module's dotted name instead (``pytest_accel/suites/detection``), the same under every rootdir."""
    path = item.path
    try:
        parts = path.relative_to(item.config.rootpath).parts if path is not None else ()
    except ValueError:
        parts = ()
    if not parts or not parts[-1].endswith(".py"):
        module = getattr(getattr(item, "module", None), "__name__", None) or (path.stem if path else "suite")
        parts = tuple(module.split("."))
    else:
        parts = (*parts[:-1], parts[-1][: -len(".py")])
    *folders, stem = parts
    return (*folders, stem.removeprefix("test_") or stem)


class ItemIdentity(NamedTuple):
    """Who a test is, apart from its device: its suite, its function and the id of its other parameters."""

    suite: str
    #: the test function, with its class if it has one: ``test_latency``, ``TestMatmul.test_latency``
    function: str
    #: the parameter id without the device's part (``fp16`` for ``test_latency[fp16-cpu]``), or ""
    params: str

    @property
    def name(self) -> str:
        return f"{self.function}-{self.params}" if self.params else self.function


def item_identity(item: pytest.Item, device: Device) -> ItemIdentity:
    """('matmul', 'test_latency', 'fp16') for suites/test_matmul.py::test_latency[fp16-cpu]: the device stays out."""
    suite = item.path.stem.removeprefix("test_") if item.path else "suite"
    function = getattr(item, "originalname", item.name)
    cls = getattr(item, "cls", None)
    if cls is not None:
        function = f"{cls.__name__}.{function}"
    params_id = ""
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        params_id, device_id = callspec.id, device.id
        if params_id == device_id:
            params_id = ""
        elif params_id.endswith(f"-{device_id}"):
            params_id = params_id[: -len(device_id) - 1]
        elif params_id.startswith(f"{device_id}-"):
            params_id = params_id[len(device_id) + 1 :]
    return ItemIdentity(suite, function, params_id)
