"""The ``pytest-accel ab`` subcommand: its arguments, the runs and the documents it writes (the comparison itself is
:mod:`pytest_accel.ab`)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_accel.ab import (
    AbError,
    RunMode,
    RunOutcome,
    Side,
    compare,
    parse_env,
    record_mode,
    recorded_mode,
    run_python_version,
    run_sides,
)
from pytest_accel.paired import DEFAULT_ALPHA, MIN_PAIRS, balanced_order, fewest_pairs


def _writable_out(out: Path) -> None:
    """AbError naming ``--out`` where no file can be made there (before any run is spent)."""
    from pytest_accel.option_readers import unwritable_out_message

    message = unwritable_out_message(out)
    if message is not None:
        raise AbError(message)


def _add_mode_options(parser: Any) -> None:
    parser.add_argument("--one-by-one", action="store_true",
                        help="run the processes one after the other instead of alive together, timing in turns "
                        "(turns cancel the runner's drift; see docs/ab.md)")
    parser.add_argument("--no-huge-pages", action="store_true",
                        help="leave the runs' heaps on the default page size (huge pages keep a process's speed "
                        "from hanging on where its memory landed; see docs/ab.md)")


def _mode(args: argparse.Namespace) -> RunMode:
    return RunMode(in_turns=not args.one_by_one, huge_pages=not args.no_huge_pages)


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
    ab.add_argument("--reuse", action="store_true", help="judge the reports already under DIR/runs (an earlier "
                    "ab with the same --pairs) instead of running: another --alpha or --threshold, no new runs")
    _add_mode_options(ab)
    ab.add_argument("pytest_args", nargs=argparse.REMAINDER,
                    help="after --: the pytest arguments both sides run (tests, devices, -k)")
    ab.set_defaults(run=run_command)
    add_power_command(commands)


def run_command(args: argparse.Namespace) -> int:
    from pytest_accel.baselines import atomic_write_json, atomic_write_text
    from pytest_accel.report import ab_report
    from pytest_accel.report.markdown import post_to_step_summary

    pytest_args = list(args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args)
    try:
        if args.pairs < MIN_PAIRS:
            raise AbError(f"--pairs {args.pairs}: at least {MIN_PAIRS} pairs are needed for an interval")
        if not 0 < args.alpha < 1 or not 0 <= args.threshold < 1:  # before the runs, not after them
            raise AbError(f"--alpha {args.alpha} must lie in (0, 1) and --threshold {args.threshold} in [0, 1)")
        if not pytest_args and not args.reuse:
            raise AbError("no tests given: pytest-accel ab ... -- suites --device=cpu -k latency")
        out = Path(args.out)
        _writable_out(out)
        sides = []
        for name in ("A", "B"):
            python = getattr(args, f"{name.lower()}_python") or sys.executable
            run_python_version(python)
            sides.append(Side(name, python, tuple(getattr(args, f"{name.lower()}_option")),
                              parse_env(getattr(args, f"{name.lower()}_env"), f"--{name.lower()}-env")))
        if (sides[0].python, sides[0].options, sides[0].env) == (sides[1].python, sides[1].options, sides[1].env):
            print("pytest-accel ab: A and B are the same stack: an A/A comparison (the false-alarm check)",
                  file=sys.stderr)
        if args.pairs < fewest_pairs(args.alpha):
            print(f"pytest-accel ab: {args.pairs} pairs cannot show any difference at alpha {args.alpha:g} (the "
                  f"signed-rank test needs at least {fewest_pairs(args.alpha)} with one timed metric, more with "
                  "several): the comparison will only check accuracy and parity", file=sys.stderr)
        if args.reuse:
            outcomes = [RunOutcome(pair, side, 0, 0.0, out / "runs" / f"run-{index:03d}-pair-{pair:02d}-{side}.json")
                        for index, (pair, side) in enumerate(balanced_order(args.pairs))]
        else:
            record_mode(out / "runs", _mode(args))
            outcomes = run_sides(sides[0], sides[1], pytest_args, args.pairs, out / "runs", timeout=args.timeout,
                                 progress=lambda line: print(f"pytest-accel ab: {line}", file=sys.stderr),
                                 mode=_mode(args))
        comparison = replace(compare(sides[0], sides[1], outcomes, args.pairs, args.alpha, args.threshold),
                             mode=recorded_mode(out / "runs"))
    except AbError as error:
        print(f"pytest-accel ab: {error}", file=sys.stderr)
        return 2
    atomic_write_json(out / "ab.json", ab_report.to_dict(comparison))
    atomic_write_text(out / "ab.md", ab_report.markdown(comparison))
    atomic_write_text(out / "ab.html", ab_report.html_page(comparison))
    post_to_step_summary(ab_report.markdown(comparison), "pytest-accel ab")
    print("\n".join(ab_report.terminal_lines(comparison)))
    print(f"written: {out / 'ab.json'}, {out / 'ab.md'}, {out / 'ab.html'}")
    return comparison.exit_code


def add_power_command(commands: Any) -> None:
    """The ``ab-power`` subcommand: the runner's own measurement of what an A/B comparison sees."""
    power = commands.add_parser(
        "ab-power", help="measure what pytest-accel ab can see on this runner: groups of fresh runs of A, A again "
        "and A with an injected slowdown; the A/A false-alarm rate and the power per number of pairs",
        description="pytest-accel ab-power --groups 40 --slowdown 0.05 -- suites --device=cpu -k latency")
    power.add_argument("--python", default=None, help="the interpreter of all three arms (default: this one)")
    power.add_argument("--option", action="append", default=[], metavar="ARG",
                       help="an extra pytest argument for every arm (repeatable)")
    power.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                       help="an environment variable for every arm (repeatable)")
    power.add_argument("--groups", type=int, default=24, help="groups of three runs (default 24)")
    power.add_argument("--slowdown", type=float, default=0.05,
                       help="the slowdown injected into B, as real work per model call (default 0.05: 5%%)")
    power.add_argument("--changes", default="0.02,0.05,0.1",
                       help="slowdowns to estimate by shifting the A/A pairs (default 0.02,0.05,0.1)")
    power.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                       help=f"family-wise false-alarm rate of each comparison (default {DEFAULT_ALPHA})")
    power.add_argument("--resamples", type=int, default=400, help="comparisons drawn per number of pairs")
    power.add_argument("--out", default="ab-power", metavar="DIR",
                       help="folder for the runs' reports and ab-power.json, ab-power.md (default ./ab-power)")
    power.add_argument("--timeout", type=float, default=None, help="seconds one run may take (default: no limit)")
    power.add_argument("--reuse", action="store_true",
                       help="analyse the reports already under DIR/runs (from an earlier ab-power) instead of running")
    _add_mode_options(power)
    power.add_argument("pytest_args", nargs=argparse.REMAINDER,
                       help="after --: the pytest arguments every arm runs (tests, devices, -k)")
    power.set_defaults(run=run_power_command)


def _changes(text: str) -> tuple[float, ...]:
    try:
        changes = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise AbError(f"--changes {text!r}: expected fractions separated by commas, e.g. 0.02,0.05,0.1") from None
    bad = [c for c in changes if not 0 < c < 1]
    if bad:
        raise AbError(f"--changes {text!r}: {bad[0]} is not a slowdown between 0 and 1 (0.05: 5%)")
    return changes


def run_power_command(args: argparse.Namespace) -> int:
    from pytest_accel import ab_power
    from pytest_accel.ab import run_schedule
    from pytest_accel.baselines import atomic_write_json, atomic_write_text
    from pytest_accel.report.markdown import post_to_step_summary

    pytest_args = list(args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args)
    out = Path(args.out)
    try:
        if args.groups < MIN_PAIRS:
            raise AbError(f"--groups {args.groups}: at least {MIN_PAIRS} are needed")
        if not 0 < args.slowdown < 1:
            raise AbError(f"--slowdown {args.slowdown}: a fraction between 0 and 1 (0.05: 5%)")
        if not 0 < args.alpha < 1 or args.resamples < 1:
            raise AbError(f"--alpha {args.alpha} must lie in (0, 1) and --resamples {args.resamples} be at least 1")
        changes = _changes(args.changes)
        _writable_out(out)
        order = ab_power.power_order(args.groups)
        if args.reuse:
            outcomes = [RunOutcome(group, arm, 0, 0.0, out / "runs" / f"run-{index:03d}-pair-{group:02d}-{arm}.json")
                        for index, (group, arm) in enumerate(order)]
        else:
            if not pytest_args:
                raise AbError("no tests given: pytest-accel ab-power ... -- suites --device=cpu -k latency")
            python = args.python or sys.executable
            run_python_version(python)
            env = parse_env(args.env, "--env")
            options = tuple(args.option)
            sides = {"A": Side("A", python, options, env), "A2": Side("A2", python, options, env),
                     "B": Side("B", python, (*options, f"--accel-inject-slowdown={args.slowdown:g}"), env)}
            record_mode(out / "runs", _mode(args))
            outcomes = run_schedule(sides, order, pytest_args, out / "runs", timeout=args.timeout,
                                    progress=lambda line: print(f"pytest-accel ab-power: {line}", file=sys.stderr),
                                    mode=_mode(args))
        series, unpaired = ab_power.collect(outcomes, args.groups)
        per_run = ab_power.seconds_per_run(outcomes)
        rows = ab_power.analyse(series, args.groups, args.slowdown, args.alpha, changes,
                                resamples=args.resamples, seconds_per_run=per_run)
    except AbError as error:
        print(f"pytest-accel ab-power: {error}", file=sys.stderr)
        return 2
    check = ab_power.PowerCheck(args.groups, args.slowdown, args.alpha, changes, tuple(series), tuple(rows), per_run,
                                tuple(unpaired), recorded_mode(out / "runs"))
    atomic_write_json(out / "ab-power.json", ab_power.to_dict(check))
    table = ab_power.markdown(check)
    atomic_write_text(out / "ab-power.md", table)
    post_to_step_summary(table, "pytest-accel ab-power")
    print(table)
    print(f"written: {out / 'ab-power.json'}, {out / 'ab-power.md'}")
    return 0
