"""The ``pytest-accel ab`` subcommand: its arguments, the runs and the documents it writes (the comparison itself is
:mod:`pytest_accel.ab`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_accel.ab import AbError, Side, compare, parse_env, run_python_version, run_sides
from pytest_accel.paired import DEFAULT_ALPHA, MIN_PAIRS


def add_command(commands: Any) -> None:
    """The ``ab`` subcommand on the console script's parser."""
    ab = commands.add_parser(
        "ab", help="compare two stacks on this machine now: the same tests run by interpreter A and B (or one "
        "interpreter with two sets of options or variables), interleaved ABBA in fresh processes; B/A per timed "
        "metric with intervals, accuracy and parity held; exit 1 when B is slower beyond the threshold or worse",
        description="pytest-accel ab --a-python PY_A --b-python PY_B --pairs 12 -- suites --device=cpu -k latency")
    for side in ("a", "b"):
        ab.add_argument(f"--{side}-python", default=None, metavar="PYTHON",
                        help=f"interpreter of side {side.upper()} (default: this one)")
        ab.add_argument(f"--{side}-option", action="append", default=[], metavar="ARG",
                        help=f"an extra pytest argument for side {side.upper()} only (repeatable; write "
                        f"--{side}-option=--accel-inject-slowdown=0.05 for one that starts with -)")
        ab.add_argument(f"--{side}-env", action="append", default=[], metavar="NAME=VALUE",
                        help=f"an environment variable for side {side.upper()} only (repeatable)")
    ab.add_argument("--pairs", type=int, default=12, help="pairs of runs (default 12; see docs/ab.md for how many a "
                    "change needs on a runner)")
    ab.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                    help=f"chance of any false alarm over all timed metrics (default {DEFAULT_ALPHA})")
    ab.add_argument("--threshold", type=float, default=0.0,
                    help="fail only when B is significantly slower by at least this much (0.03: 3%%; default 0)")
    ab.add_argument("--out", default="ab", metavar="DIR",
                    help="folder for the runs' reports and ab.json, ab.md, ab.html (default ./ab)")
    ab.add_argument("--timeout", type=float, default=None, help="seconds one run may take (default: no limit)")
    ab.add_argument("pytest_args", nargs=argparse.REMAINDER,
                    help="after --: the pytest arguments both sides run (tests, devices, -k)")
    ab.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    from pytest_accel.baselines import atomic_write_json, atomic_write_text
    from pytest_accel.report import ab_report
    from pytest_accel.report.markdown import step_summary_path

    pytest_args = list(args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args)
    try:
        if args.pairs < MIN_PAIRS:
            raise AbError(f"--pairs {args.pairs}: at least {MIN_PAIRS} pairs are needed for an interval")
        if not pytest_args:
            raise AbError("no tests given: pytest-accel ab ... -- suites --device=cpu -k latency")
        sides = []
        for name in ("A", "B"):
            python = getattr(args, f"{name.lower()}_python") or sys.executable
            run_python_version(python)
            sides.append(Side(name, python, tuple(getattr(args, f"{name.lower()}_option")),
                              parse_env(getattr(args, f"{name.lower()}_env"), name)))
        if (sides[0].python, sides[0].options, sides[0].env) == (sides[1].python, sides[1].options, sides[1].env):
            print("pytest-accel ab: A and B are the same stack: an A/A comparison (the false-alarm check)",
                  file=sys.stderr)
        out = Path(args.out)
        outcomes = run_sides(sides[0], sides[1], pytest_args, args.pairs, out / "runs", timeout=args.timeout,
                             progress=lambda line: print(f"pytest-accel ab: {line}", file=sys.stderr))
        comparison = compare(sides[0], sides[1], outcomes, args.pairs, args.alpha, args.threshold)
    except AbError as error:
        print(f"pytest-accel ab: {error}", file=sys.stderr)
        return 2
    atomic_write_json(out / "ab.json", ab_report.to_dict(comparison))
    atomic_write_text(out / "ab.md", ab_report.markdown(comparison))
    atomic_write_text(out / "ab.html", ab_report.html_page(comparison))
    summary = step_summary_path()
    if summary is not None:
        try:
            with summary.open("a", encoding="utf-8") as file:
                file.write(ab_report.markdown(comparison) + "\n")
        except OSError as error:
            print(f"pytest-accel ab: cannot append to the step summary {summary}: {error}", file=sys.stderr)
    print("\n".join(ab_report.terminal_lines(comparison)))
    print(f"written: {out / 'ab.json'}, {out / 'ab.md'}, {out / 'ab.html'}")
    return comparison.exit_code
