"""The names a device may answer with, and the bounds its numerics are judged against."""

from __future__ import annotations

#: the dtypes a device may claim: those workloads ask for (fp32, fp16, bf16), and int8 for quantised-only devices
WORKLOAD_DTYPES = ("fp32", "fp16", "bf16", "int8")
#: what ``effective_precision`` may answer: the names parity bounds are kept for
PRECISION_NAMES = ("fp32", "tf32", "fp16", "bf16", "int8")
#: largest relative error (to the largest entry of the float64 product) of the kit's 64x64 unit-normal matmul, per
#: precision: about 8x what rounding inputs and outputs to that many mantissa bits gives
MATMUL_MAX_REL_ERROR = {"fp32": 1e-4, "tf32": 5e-3, "fp16": 5e-3, "bf16": 3e-2}
