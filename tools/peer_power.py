"""Measure the peer check on real timing: identical CPU-backed devices, one of them slowed by real work.

Each run is a fresh ``pytest`` process over ``--devices`` fake devices of one key (``cpufake:0`` ...), every one
timing the same real host work (a float32 matrix product of ``--size``, NumPy on one thread, the standard timing
profile: about 2.5 s of rounds a device); in a run with a slowdown one device, chosen at random, takes
``1 + slowdown`` times as long for each product: it computes the product, then keeps its core busy for that share
of the product's time, as a throttled device would (extra rows of work in proportion came out slower than their
share: 5% more rows took 6-8% longer). The conditions (none slowed and each slowdown) take turns run by run, so a
drift of the machine falls on all of them alike. Reported: the share of runs that flag the slowed device, and of
runs without a slowdown that flag none; the devices' spread in runs without a slowdown.

    python tools/peer_power.py --devices 5 --runs 60 --slowdowns 0.05,0.10 --out peer-power.json
    python tools/peer_power.py --devices 5 --runs 40 --workers 5   # each device on its own xdist worker
    python tools/peer_power.py --devices 5 --runs 40 --workers 5 --turns   # ... their rounds in turns

A device's work runs in its own test; without ``--workers`` the devices are timed one after the other in one
process, with ``--workers N`` at the same time on N workers (--accel-worker-per-device), with ``--turns`` as well
on N workers taking turns, their timed rounds interleaved in slices (--accel-devices-in-turns).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFTEST = """
import os
import time

import numpy as np

from pytest_accel.devices import Backend, Device, DeviceInfo

SIZE = int(os.environ["CPUFAKE_SIZE"])
_rng = np.random.default_rng(0)
A = _rng.standard_normal((SIZE, SIZE), dtype=np.float32)
B = _rng.standard_normal((SIZE, SIZE), dtype=np.float32)


class CpuFake(Device):
    runtime = "numpy"

    def describe(self):
        return DeviceInfo(backend=self.backend_name, spec=self.spec, vendor="host", model="cpu fake")


class CpuFakeBackend(Backend):
    name = "cpufake"
    grammar = "cpufake:N"

    def parse(self, spec):
        return spec if spec.startswith("cpufake:") and spec[8:].isdigit() else None

    def discover(self):
        return [f"cpufake:{i}" for i in range(int(os.environ["CPUFAKE_COUNT"]))]

    def open(self, spec):
        return CpuFake(spec, self.name)


def pytest_accel_register_backends(registry):
    registry.register(CpuFakeBackend())


def work(device):
    slowed = device.spec == os.environ.get("CPUFAKE_SLOW")
    extra = float(os.environ.get("CPUFAKE_SLOWDOWN", "0")) if slowed else 0.0

    def run():
        start = time.perf_counter()
        A @ B
        if extra:  # that much slower, as a throttled device: the core kept busy for that share of the product's time
            end = start + (time.perf_counter() - start) * (1 + extra)
            while time.perf_counter() < end:
                pass
    return run
"""

TEST = """
from conftest import work

def test_product(accel, device):
    accel.check(*accel.measure_latency("fake.product", work(device)).metrics())
"""


def one_run(folder: Path, devices: int, slow: str | None, slowdown: float, workers: int, size: int,
            in_turns: bool = False, profile: str = "standard") -> list[dict]:
    report = folder / "run.json"
    report.unlink(missing_ok=True)
    env = {**os.environ, "CPUFAKE_COUNT": str(devices), "CPUFAKE_SIZE": str(size), "CPUFAKE_SLOWDOWN": str(slowdown),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTEST_ADDOPTS": "-p no:randomly -p no:cacheprovider -p no:benchmark"}
    # No transparent huge pages asked for (pytest-accel ab asks for them): with them, whole fake devices came out
    # 5-8% slower than their peers, process by process, round after round (some processes got huge pages and some
    # did not); without them the devices' medians differ by 0.3-0.5%.
    for name in ("CPUFAKE_SLOW", "THP_MEM_ALLOC_ENABLE", "GLIBC_TUNABLES"):
        env.pop(name, None)
    if slow is not None:
        env["CPUFAKE_SLOW"] = slow
    command = [sys.executable, "-m", "pytest", "-q", "--device=cpufake:*", f"--accel-profile={profile}",
               f"--accel-report={report}", "--accel-baseline-dir=no-baselines", "--accel-gate=latency"]
    if workers:
        command += ["-n", str(workers), "--accel-worker-per-device"]
        if in_turns:
            command.append("--accel-devices-in-turns")
    subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False)
    document = json.loads(report.read_text())
    return [f for f in document["peers"] if f["metric"].endswith(".latency")]


def _summary(args: argparse.Namespace, tallies: dict[str, dict[str, float]], spreads: list[float], seconds: float,
             each_run: list[dict]) -> dict:
    ordered = sorted(spreads)
    return {"devices": args.devices, "rounds": tallies["0"]["runs"], "workers": args.workers, "turns": args.turns,
            "size": args.size, "profile": args.profile, "seconds": round(seconds),
            "median_peer_spread": ordered[len(ordered) // 2],
            "no_slowdown": {"runs": tallies["0"]["runs"], "none_flagged": tallies["0"]["quiet"] / tallies["0"]["runs"]},
            **{f"slowdown {name}": {"runs": t["runs"], "caught": t["caught"] / t["runs"],
                                    "another_device_flagged": t["others_flagged"] / t["runs"]}
               for name, t in tallies.items() if name != "0"},
            "each_run": each_run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5, help="devices of the one key (default 5: 4 peers each)")
    parser.add_argument("--runs", type=int, default=40, help="runs per condition (default 40)")
    parser.add_argument("--slowdowns", default="0.05,0.10", help="slowdowns of one device (default 0.05,0.10)")
    parser.add_argument("--workers", type=int, default=0, help="xdist workers, one per device (default 0: none)")
    parser.add_argument("--turns", action="store_true", help="with --workers: the workers take turns")
    parser.add_argument("--size", type=int, default=400, help="the matrix product's size (default 400)")
    parser.add_argument("--profile", default="standard",
                        help="the timing profile (default standard, what an accelerator gets; quick times a device "
                             "for about 20 ms, shorter than a turn)")
    parser.add_argument("--out", type=Path, default=None, help="write the tallies as JSON here")
    args = parser.parse_args(argv)
    slowdowns = [float(part) for part in args.slowdowns.split(",")]
    rng = random.Random(0)
    tallies: dict[str, dict[str, float]] = {"0": {"runs": 0, "quiet": 0}}
    tallies.update({f"{s:g}": {"runs": 0, "caught": 0, "others_flagged": 0} for s in slowdowns})
    spreads: list[float] = []
    each_run: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "conftest.py").write_text(CONFTEST)
        (folder / "test_fake.py").write_text(TEST)
        for index in range(args.runs):
            for condition in [0.0, *slowdowns]:
                slow = f"cpufake:{rng.randrange(args.devices)}" if condition else None
                findings = one_run(folder, args.devices, slow, condition, args.workers, args.size, args.turns,
                                   args.profile)
                flagged = {f["device"] for f in findings if f["flagged"]}
                if not condition:  # the peers' spread where no device is slowed (a slowed peer would widen it)
                    spreads += [f["peer_spread"] for f in findings]
                tally = tallies[f"{condition:g}" if condition else "0"]
                tally["runs"] += 1
                if condition:
                    tally["caught"] += slow in flagged
                    tally["others_flagged"] += bool(flagged - {slow})
                else:
                    tally["quiet"] += not flagged
                each_run.append({"slowdown": condition, "slowed": slow, "flagged": sorted(flagged),
                                 "value": {f["device"]: f["value"] for f in findings},
                                 "worse_by": {f["device"]: round(f["worse_by"], 5) for f in findings},
                                 "peer_spread": {f["device"]: round(f["peer_spread"], 5) for f in findings}})
            print(f"run {index + 1}/{args.runs}: " + ", ".join(
                f"{name}: {t.get('caught', t.get('quiet'))}/{t['runs']}" for name, t in tallies.items()),
                file=sys.stderr, flush=True)
            result = _summary(args, tallies, spreads, time.perf_counter() - started, each_run)
            if args.out is not None:  # after every round: a campaign stopped early keeps what it measured
                args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "each_run"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
