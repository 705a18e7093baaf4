"""The host CPU's peak, estimated from what it reports about itself: cores x clock x operations per cycle.

Operations per cycle and core come from the instruction sets the CPU lists (AVX2, AVX-512, AVX512-BF16/FP16,
VNNI, AMX) and what is known of the cores that run them: how many fused multiply-add pipes and how wide their data
paths are. CPUID does not report the pipes, so they are assumptions stated with the estimate:

- x86 cores have two FMA pipes (Intel since Haswell, AMD since Zen); their data paths are as wide as the widest
  vector set, except AMD family 0x19 (Zen 3 and Zen 4), which runs 512-bit instructions as two 256-bit halves.
- bf16 dot products (VDPBF16PS) do two products per fp32 lane, fp16 FMAs (AVX512-FP16) fill 16-bit lanes, int8 dot
  products (VNNI) four products per 32-bit lane; AMX tiles do 1024 bf16/fp16 or 2048 int8 operations per cycle.
- Arm cores: 128-bit NEON with two FMA pipes (SVE widths and more pipes exist; give the clock and a datasheet entry
  where they matter).

The clock is the weakest input: a virtual machine often reports the nominal clock while the cores boost above
it, so a measured rate above "100% of peak" means the clock used was too low, and the estimate says which it used
and where it read it. ``PYTEST_ACCEL_CPU_GHZ`` (or ``--accel-cpu-ghz``) gives the clock the estimate should use
(e.g. the all-core boost from the CPU's datasheet).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

CLOCK_ENV = "PYTEST_ACCEL_CPU_GHZ"
FMA_PIPES = 2
_AMX_OPS = {"bf16": 1024, "fp16": 1024, "int8": 2048}


@dataclass(frozen=True)
class Clock:
    ghz: float
    source: str


@dataclass(frozen=True)
class CpuPeak:
    """Peak operations per second per precision, with the formula and every input it used."""

    cores: int
    clock: Clock
    #: precision -> operations per cycle and core
    per_cycle: dict[str, float]
    #: precision -> how the per-cycle figure was reached
    basis: dict[str, str]
    assumptions: tuple[str, ...]
    bandwidth_gbs: float | None = None
    bandwidth_source: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)

    def tflops(self, precision: str) -> float | None:
        per_cycle = self.per_cycle.get(precision)
        return None if per_cycle is None else self.cores * self.clock.ghz * per_cycle / 1e3

    def formula(self, precision: str) -> str:
        per_cycle = self.per_cycle[precision]
        return (f"{self.cores} cores x {self.clock.ghz:.3g} GHz x {per_cycle:g} {precision} ops/cycle "
                f"({self.basis[precision]}) = {self.cores * self.clock.ghz * per_cycle:.4g} G ops/s")

    def summary(self) -> dict[str, Any]:
        return {"cores": self.cores, "clock_ghz": self.clock.ghz, "clock_source": self.clock.source,
                "per_cycle": dict(self.per_cycle), "formulas": {p: self.formula(p) for p in self.per_cycle},
                "assumptions": list(self.assumptions), "bandwidth_gbs": self.bandwidth_gbs,
                "bandwidth_source": self.bandwidth_source or "not readable here: measured only", **self.inputs}


def _x86_per_cycle(vendor: str, family: int | None, flags: frozenset[str]) -> tuple[dict[str, float],
                                                                                    dict[str, str], list[str]]:
    if "avx512f" in flags:
        vector_bits = 512
    elif "avx2" in flags or "avx" in flags:
        vector_bits = 256
    else:
        vector_bits = 128
    datapath = vector_bits
    assumptions = [f"{FMA_PIPES} FMA pipes per core"]
    if vendor == "AMD" and family == 0x19 and vector_bits == 512:
        datapath = 256
        assumptions.append("AMD family 0x19 (Zen 4) runs 512-bit instructions on 256-bit data paths")
    has_fma = "fma" in flags or vector_bits == 512
    fp32_lanes = datapath // 32
    fp32 = FMA_PIPES * fp32_lanes * (2 if has_fma else 1)
    width = f"{FMA_PIPES} pipes x {fp32_lanes} fp32 lanes ({datapath}-bit)"
    per_cycle = {"fp64": fp32 / 2, "fp32": float(fp32)}
    basis = {"fp64": f"{width} / 2 x {'FMA' if has_fma else 'mul+add'}",
             "fp32": f"{width} x {'2 (FMA)' if has_fma else '1'}"}
    if {"amx_bf16", "amx_tile"} <= flags:
        per_cycle["bf16"], basis["bf16"] = _AMX_OPS["bf16"], "AMX tile unit"
    elif "avx512_bf16" in flags:
        per_cycle["bf16"], basis["bf16"] = 2.0 * fp32, "VDPBF16PS: 2 products per fp32 lane"
    if {"amx_fp16", "amx_tile"} <= flags:
        per_cycle["fp16"], basis["fp16"] = _AMX_OPS["fp16"], "AMX-FP16 tile unit"
    elif "avx512_fp16" in flags:
        per_cycle["fp16"], basis["fp16"] = 2.0 * fp32, "AVX512-FP16: 16-bit lanes"
    if {"amx_int8", "amx_tile"} <= flags:
        per_cycle["int8"], basis["int8"] = _AMX_OPS["int8"], "AMX-INT8 tile unit"
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        vnni_lanes = (datapath if "avx512_vnni" in flags else min(datapath, 256)) // 32
        per_cycle["int8"] = float(FMA_PIPES * vnni_lanes * 8)
        basis["int8"] = f"VNNI: {FMA_PIPES} pipes x {vnni_lanes} lanes x 4 products x 2"
    return per_cycle, basis, assumptions


def _arm_per_cycle(flags: frozenset[str]) -> tuple[dict[str, float], dict[str, str], list[str]]:
    fp32 = FMA_PIPES * 4 * 2
    per_cycle = {"fp64": fp32 / 2, "fp32": float(fp32)}
    basis = {"fp64": "2 pipes x 2 fp64 lanes x 2 (FMA)", "fp32": "2 pipes x 4 fp32 lanes (128-bit NEON) x 2 (FMA)"}
    if "asimdhp" in flags or "fphp" in flags:
        per_cycle["fp16"], basis["fp16"] = 2.0 * fp32, "NEON fp16: 8 lanes"
    if "bf16" in flags:
        per_cycle["bf16"], basis["bf16"] = 2.0 * fp32, "BFDOT: 2 products per fp32 lane"
    if "asimddp" in flags or "i8mm" in flags:
        per_cycle["int8"], basis["int8"] = 4.0 * fp32, "SDOT: 4 products per 32-bit lane"
    return per_cycle, basis, [f"{FMA_PIPES} FMA pipes of 128 bits per core (Arm cores vary: an estimate)"]


def host_clock(environ: dict[str, str] | None = None, *, sys_root: Path = Path("/"),
               facts: dict[str, Any] | None = None, given_ghz: float | None = None) -> Clock:
    """The clock the estimate uses, and where it was read, in this order: the user's (``--accel-cpu-ghz``, else
    ``PYTEST_ACCEL_CPU_GHZ``);
    the kernel's maximum (cpufreq ``cpuinfo_max_freq``: boost included); the clock in the model name (nominal);
    the clock the kernel reports now (``/proc/cpuinfo``, in a virtual machine usually the host's nominal one)."""
    if given_ghz is not None:
        return Clock(given_ghz, "given (--accel-cpu-ghz)")
    environ = dict(os.environ) if environ is None else environ
    given = environ.get(CLOCK_ENV, "").strip()
    if given:
        try:
            ghz = float(given)
        except ValueError:
            ghz = math.nan
        if not (math.isfinite(ghz) and 0.1 <= ghz <= 10):
            raise ValueError(f"{CLOCK_ENV}={given!r}: expected the clock in GHz, between 0.1 and 10 (e.g. 3.1)")
        return Clock(ghz, f"given ({CLOCK_ENV})")
    max_freq = sys_root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
    try:
        return Clock(int(max_freq.read_text().strip()) / 1e6, "cpufreq cpuinfo_max_freq (the kernel's maximum, "
                     "boost included)")
    except (OSError, ValueError):
        pass
    if facts is None:
        from pytest_accel.environment import cpu_facts

        facts = cpu_facts()
    brand = str(facts.get("brand_raw") or "")
    named = re.search(r"@\s*([\d.]+)\s*GHz", brand, flags=re.IGNORECASE)
    if named:
        return Clock(float(named.group(1)), "the model name (the nominal clock; boost can run above it)")
    actual = facts.get("hz_actual")
    if isinstance(actual, (list, tuple)) and actual and isinstance(actual[0], int) and actual[0] > 0:
        return Clock(actual[0] / 1e9, "the clock the kernel reports now (/proc/cpuinfo; in a virtual machine "
                     "usually the nominal clock: boost can run above it)")
    raise ValueError("the CPU reports no clock: give it with " + CLOCK_ENV)


def dmi_bandwidth(text: str) -> tuple[float, str] | None:
    """Peak memory bandwidth from ``dmidecode --type 17`` output: the populated modules' configured speed (MT/s)
    x data width, summed, assuming each module on its own channel; None when nothing usable is listed."""
    total = 0.0
    modules = 0
    for block in text.split("\n\n"):
        if "Memory Device" not in block or re.search(r"Size:\s*No Module Installed", block):
            continue
        speed = re.search(r"Configured (?:Memory|Clock) Speed:\s*(\d+)\s*MT/s", block) or re.search(
            r"\n\s*Speed:\s*(\d+)\s*MT/s", block)
        width = re.search(r"Data Width:\s*(\d+)\s*bits", block)
        if speed and width:
            total += int(speed.group(1)) * int(width.group(1)) / 8 / 1e3
            modules += 1
    if not modules:
        return None
    return total, (f"dmidecode: {modules} memory module(s) x configured speed x data width, each module assumed on "
                   "its own channel (an upper bound where channels hold two)")


def read_dmi_bandwidth() -> tuple[float, str] | None:
    tool = shutil.which("dmidecode")
    if tool is None:
        return None
    try:
        text = subprocess.run([tool, "--type", "17"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return dmi_bandwidth(text)


def estimate(vendor: str, arch: str, family: int | None, flags: Iterable[str], cores: int, clock: Clock,
             bandwidth: tuple[float, str] | None = None) -> CpuPeak:
    """The peak of ``cores`` cores of this CPU at ``clock`` (see the module's description)."""
    if cores < 1:
        raise ValueError(f"cores={cores!r}: at least 1")
    flag_set = frozenset(flags)
    if arch.lower() in ("arm_8", "arm_7", "aarch64", "arm64") or arch.lower().startswith("arm"):
        per_cycle, basis, assumptions = _arm_per_cycle(flag_set)
    else:
        per_cycle, basis, assumptions = _x86_per_cycle(vendor, family, flag_set)
    for precision in ("bf16", "fp16"):
        if precision not in per_cycle:
            assumptions.append(f"no {precision} arithmetic: {precision} runs converted to fp32, so its peak here is "
                               "the fp32 one")
            per_cycle[precision], basis[precision] = per_cycle["fp32"], "converted to fp32"
    listed = sorted(f for f in flag_set if re.match(r"(avx|amx|fma|asimd|sve|bf16|i8mm)", f))
    return CpuPeak(cores, clock, per_cycle, basis, tuple(assumptions),
                   bandwidth[0] if bandwidth else None, bandwidth[1] if bandwidth else "",
                   {"vendor": vendor, "arch": arch, "family": family, "flags_used": listed})


def host_estimate(cores: int | None = None, ghz: float | None = None) -> CpuPeak:
    """The estimate for this host, with ``cores`` (default: those this process may run on) at ``ghz`` (default:
    :func:`host_clock`)."""
    from pytest_accel import environment

    facts = environment.cpu_facts()
    vendor, _ = environment.cpu_model()
    family = facts.get("family")
    return estimate(vendor, str(facts.get("arch") or os.uname().machine), family if isinstance(family, int) else None,
                    environment.cpu_flags(), cores or environment.cpu_cores(), host_clock(facts=facts, given_ghz=ghz),
                    read_dmi_bandwidth())


__all__ = ["CLOCK_ENV", "Clock", "CpuPeak", "dmi_bandwidth", "estimate", "host_clock", "host_estimate"]
