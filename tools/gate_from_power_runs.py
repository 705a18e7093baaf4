"""Judge an ``pytest-accel ab-power`` folder's runs as ``pytest-accel gate-check`` judges its own.

ab-power's groups hold what the gate self-check runs: fresh processes of the unchanged stack (A) and of the same
stack with an injected slowdown (B), interleaved, with no baselines and no gate. Taking A of group g as the unchanged
run of round g and B as its slowed run, one measurement campaign gives both figures: what an A/B comparison sees
(ab-power's own table) and what the history gate sees, for single runs and for medians of 3, 5 and 7 runs
(``pytest-accel repeat``), with the candidate runs each metric needs to catch +10%.

    python tools/gate_from_power_runs.py ab-power/ --rounds 12 --out gate-from-power.json

``--rounds`` keeps the first groups only, so the history each run is judged against has the size a CI baseline
would (the gate keeps at most 20 runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pytest_accel.ab_power import power_order
from pytest_accel.gatecheck_runner import Run, judge, lines, summarise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an ab-power --out folder")
    parser.add_argument("--rounds", type=int, default=None, help="the first N groups only (default: all)")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=None, help="write the summary as JSON here")
    args = parser.parse_args(argv)
    document = json.loads((args.folder / "ab-power.json").read_text())
    groups, slowdown = int(document["groups"]), float(document["injected_slowdown"])
    rounds = min(args.rounds or groups, groups)
    runs = []
    for index, (group, arm) in enumerate(power_order(groups)):
        if group >= rounds or arm == "A2":
            continue
        report = args.folder / "runs" / f"run-{index:03d}-pair-{group:02d}-{arm}.json"
        runs.append(Run(0.0 if arm == "A" else slowdown, group, report, 0, 0.0))
    summary = summarise(runs, judge(runs, args.alpha), args.alpha)
    for line in lines(summary):
        print(line)
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
