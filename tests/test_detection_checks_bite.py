"""The detection suite's checks fail when the device under test misbehaves.

A backend whose device perturbs one layer's activations must fail parity and accuracy; one whose device adds a fixed
delay to every forward pass must fail latency against the baseline recorded without it; one that returns cached
results for a repeated input fails the repeated-input audit; one that computes differently when called back to back
fails the timed-output audit. All run the real suite file with the bundled detector on the CPU.
"""

from __future__ import annotations

import pytest

from tests.helpers import copy_suites, literal

pytestmark = pytest.mark.workload

MISBEHAVING_BACKENDS = """
import os
import time

from pytest_accel.devices import Backend
from pytest_accel.devices.torch import TorchDevice


class MisbehavingCpu(TorchDevice):
    def __init__(self, name):
        super().__init__("cpu")
        self.spec = name

    def prepare_module(self, module):
        if self.spec == "perturbed":
            layer = module.model[6]  # a backbone C2f block
            layer.register_forward_hook(lambda _module, _inputs, output: output * 1.25)
        elif self.spec == "caching":  # returns the last result again when given the same input tensor
            forward, last = module.forward, {}

            def caching_forward(x, *args, **kwargs):
                if last.get("key") != x.data_ptr():
                    last["key"], last["out"] = x.data_ptr(), forward(x, *args, **kwargs)
                return last["out"]

            module.forward = caching_forward
        elif self.spec == "sloppy":  # right on a test phase's first call, wrong on every call back to back after it
            forward, seen = module.forward, {"phase": None}

            def sloppy_forward(*args, **kwargs):
                output = forward(*args, **kwargs)
                # counted by test phase, not by the clock: beside a busy neighbour one forward alone outlasts any
                # "back to back" interval, and a clocked fake then computes right under load
                phase = os.environ.get("PYTEST_CURRENT_TEST")
                busy, seen["phase"] = seen["phase"] == phase, phase
                if busy and isinstance(output, (tuple, list)):
                    return (output[0] * 1.01, *output[1:])
                return output * 1.01 if busy else output

            module.forward = sloppy_forward
        else:
            forward = module.forward

            def delayed_forward(*args, **kwargs):
                time.sleep(float(os.environ.get("ACCEL_TEST_DELAY", "0")))
                return forward(*args, **kwargs)

            module.forward = delayed_forward
        return module


class MisbehavingBackend(Backend):
    name = "misbehaving"
    grammar = "perturbed, delayed, caching, sloppy"

    def parse(self, spec):
        return spec if spec in ("perturbed", "delayed", "caching", "sloppy") else None

    def discover(self):
        return []

    def open(self, spec):
        return MisbehavingCpu(spec)


def pytest_accel_register_backends(registry):
    registry.register(MisbehavingBackend())
"""


@pytest.fixture
def suite_copy(suite_project: pytest.Pytester) -> pytest.Pytester:
    copy_suites(suite_project.path, "test_detection.py", extra_conftest=MISBEHAVING_BACKENDS)
    return suite_project


def test_perturbed_activations_fail_parity_and_accuracy(suite_copy: pytest.Pytester) -> None:
    result = suite_copy.runpytest(
        "suites/test_detection.py", "--device=perturbed", "--yolo-dtypes=fp32", "-k", "parity or accuracy"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*pytest-accel: * check(s) failed on perturbed (perturbed-*)",
            literal("*detection.map50_95 [accuracy]: obtained *, expected * (reference reference/detection/"
                    "shapes-yolov8n.json), diff -*%, tolerance 0.01 (default); worse than the reference beyond the "
                    "tolerance"),
            "*check(s) failed on perturbed*",
            literal("*detection.head_rel_l2_error [parity]: obtained *, expected <= 0.005 (the metric's limit); "
                    "outside the bound"),
            literal("*detection.box_match [parity]: obtained *, expected >= 0.99 (the metric's limit); outside "
                    "the bound"),
            "*(bounds and references are not baselines: an update would not settle this)",
        ]
    )


def test_added_delay_fails_latency(suite_copy: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # a delay about three times the forward's own time, judged on absolute times: a busy neighbour stretches the
    # forward and the probe by different amounts from run to run, never a 0.1 s sleep down to nothing
    args = ("suites/test_detection.py", "--device=delayed", "--yolo-dtypes=fp32", "-k", "latency_model_only",
            "--accel-latency-basis=absolute")
    monkeypatch.setenv("ACCEL_TEST_DELAY", "0")
    suite_copy.runpytest(*args, "--accel-missing-baseline=record").assert_outcomes(passed=1)
    monkeypatch.setenv("ACCEL_TEST_DELAY", "0.1")
    result = suite_copy.runpytest(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        # the unit follows the value: a loaded machine stretches the delayed forward from ~0.13 s past a second
        [literal("*detection.model.latency [latency]: obtained *, expected *, diff +*%, tolerance 0.05 "
                 "(default); median time +*% (probe-normalised +*%), slower beyond the tolerance of 0.1; "
                 "Mann-Whitney p=*")]
    )


def test_a_device_caching_results_fails_the_repeated_input_audit(suite_copy: pytest.Pytester) -> None:
    result = suite_copy.runpytest("suites/test_detection.py", "--device=caching", "--yolo-dtypes=fp32",
                                             "-k", "repeated_input_audit")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal("*detection.repeated_input_speedup [parity]: obtained *, expected <= 1.25 "
                                         "(the metric's limit: the value is a lower confidence bound (at least "
                                         "99%) on the median speed-up of 10 back-to-back pairs of blocks: beyond "
                                         "the limit, results come from a cache, not computed); outside the bound")])


def test_a_device_wrong_under_load_fails_the_timed_output_audit(suite_copy: pytest.Pytester) -> None:
    result = suite_copy.runpytest("suites/test_detection.py", "--device=sloppy", "--yolo-dtypes=fp32",
                                             "-k", "latency_model_only or repeated_input_audit")
    result.assert_outcomes(failed=1, passed=1)  # computing differently is not caching: only the timed output fails
    result.stdout.fnmatch_lines([literal("*detection.timed_output_error [parity]: obtained *, expected <= 0.001 "
                                         "(the metric's limit); outside the bound")])
