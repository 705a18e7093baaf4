"""The backend contract a vendor subclasses: every check, in the order they run."""

from __future__ import annotations

from pytest_accel.testing.device_checks import DeviceChecks
from pytest_accel.testing.spec_checks import SpecChecks


# pytest collects inherited tests base class first (reverse MRO): the spec checks, then the device checks
class BackendContract(DeviceChecks, SpecChecks):
    """Base class of a vendor's contract tests; see the package documentation (:mod:`pytest_accel.testing`). Not
    collected itself (its name does not start with ``Test``); every ``Test*`` subclass is, with all the tests of
    :class:`SpecChecks` and :class:`DeviceChecks`."""
