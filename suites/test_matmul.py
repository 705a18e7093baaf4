"""Smoke suite: an fp32 matmul per device — parity with a float64 host reference, latency, throughput.

A small real workload that exercises every part of the plugin on any backend in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_accel.devices import Device
from pytest_accel.metrics import Metric
from pytest_accel.workloads.matmul import Matmul, reference_product

SIZE = 512
#: fp32 accumulation over 512 terms of unit-variance products: errors ~1e-5 relative to the row scale; TF32 and fp16
#: round the inputs to 10 mantissa bits (2.9e-4 when emulated on the CPU), so their bound is 1e-3; bf16 keeps 7 bits
#: (2.4e-3 emulated, and the same from OpenVINO's CPU plugin, which runs fp32 models in bf16), bound 1e-2
MAX_REL_ERROR = {"fp32": 1e-4, "tf32": 1e-3, "fp16": 1e-3, "bf16": 1e-2}


@pytest.fixture(scope="module")
def matmul(device: Device) -> Matmul:
    return Matmul(device, SIZE)


def test_matmul_parity(matmul, accel):
    obtained = matmul.result()
    expected = reference_product(matmul.a, matmul.b)
    scale = np.abs(expected).max()
    precision = matmul.precision  # what really ran: a runtime may lower fp32 (OpenVINO on CPUs with bf16)
    summary: dict[str, object] = {"precision": precision}
    if matmul.execution is not None:
        summary["execution"] = matmul.execution.summary()
    accel.check(
        Metric("matmul.max_rel_error", float(np.abs(obtained - expected).max() / scale), "", "parity", "lower",
               limit=MAX_REL_ERROR[precision], summary=summary,
               sections=("precision",) if matmul.execution is not None else ()),
    )


def test_matmul_latency(matmul, accel):
    measurement = accel.measure_latency("matmul", matmul.run)
    gflops = Metric("matmul.gflops", matmul.flops() / measurement.median / 1e9, "GFLOP/s", "info", "higher")
    accel.check(*measurement.metrics(), gflops)
