"""The ``pytest-accel`` console script: build the bundled assets and record device-independent references."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pytest_accel.progress import stream_progress
from pytest_accel.workloads.cache import default_cache_dir

#: detection-reference's opt-in to unpickling a weights file fully
UNSAFE_LOAD_OPT_IN = "--allow-unsafe-load"

if TYPE_CHECKING:
    from pytest_accel.references import ReferenceStore


def _non_empty(text: str) -> str:
    """``text``, or ValueError where it is empty: ``--model=$UNSET`` is a mistake, not a request for the default."""
    if not text.strip():
        raise ValueError(f"{text!r}: empty; give a path, or leave the option out for the default")
    return text


def _empty(option: str, text: str | None) -> bool:
    """Whether ``option`` was given an empty value, said in one line on stderr."""
    try:
        if text is not None:
            _non_empty(text)
    except ValueError as error:
        print(f"pytest-accel: {option}={error}", file=sys.stderr)
        return True
    return False


def _references(args: argparse.Namespace) -> ReferenceStore:
    """Where references are read and written: --reference-dir, else the ini key the plugin reads (relative to its
    ini file), else the bundled suites' own: the same folder a pytest run started here uses."""
    from pytest_accel.options import INI_REFERENCE_DIR
    from pytest_accel.paths import pytest_ini_setting
    from pytest_accel.references import ReferenceStore, shipped_reference_dir

    if args.reference_dir:
        return ReferenceStore(Path(args.reference_dir).expanduser().resolve())
    setting = pytest_ini_setting(INI_REFERENCE_DIR, Path.cwd())
    if setting is not None:
        ini_dir, value = setting
        return ReferenceStore((ini_dir / value).resolve())
    return ReferenceStore(shipped_reference_dir())


def _cache_unwritable() -> bool:
    """Whether the workloads' cache folder cannot be written, said in one line on stderr (before a data set or a
    model is made there, which would stop on a raw OSError)."""
    from pytest_accel.option_readers import unwritable_folder
    from pytest_accel.workloads.cache import unwritable_cache_message

    reason = unwritable_folder(default_cache_dir())
    if reason is not None:
        print(f"pytest-accel: {unwritable_cache_message(default_cache_dir(), reason)}", file=sys.stderr)
    return reason is not None


def _build_detector(args: argparse.Namespace) -> int:
    from pytest_accel.workloads.detection.model import DetectorSource
    from pytest_accel.workloads.detection.reference import record_reference
    from pytest_accel.workloads.detection.train import TrainSettings, train_detector

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"pytest-accel: {out} exists; pass --force to replace it", file=sys.stderr)
        return 2
    if _cache_unwritable():
        return 2
    settings = TrainSettings(epochs=args.epochs, seed=args.seed, device=args.device, imgsz=args.imgsz,
                             verbose=not args.quiet)
    progress = stream_progress(quiet=args.quiet)
    result = train_detector(out, default_cache_dir(), settings, progress=progress)
    print(f"trained {settings.epochs} epochs in {result.seconds:.0f} s on {settings.device}: {out}")
    source = DetectorSource(out, args.imgsz, default_cache_dir())
    path, scores = record_reference(_references(args), source, result.data_yaml, force=True, progress=progress)
    print(f"fp32 reference on the val split: mAP50-95 {scores.map50_95:.4f}, mAP50 {scores.map50:.4f} -> {path}")
    return 0


def _detection_reference(args: argparse.Namespace) -> int:
    from pytest_accel.workloads.detection.dataset import ensure_dataset
    from pytest_accel.workloads.detection.model import (
        BUNDLED_WEIGHTS,
        DetectorSource,
        check_model_loads,
        check_model_path,
    )
    from pytest_accel.workloads.detection.reference import record_reference

    try:  # before anything else: the data set made, the model loaded by ultralytics
        model = check_model_path(Path(_non_empty(args.model))) if args.model is not None else BUNDLED_WEIGHTS
        check_model_loads(model, args.allow_unsafe_load, UNSAFE_LOAD_OPT_IN, args.imgsz)
    except (ValueError, RuntimeError) as error:
        print(f"pytest-accel: --model={error}", file=sys.stderr)
        return 2
    if _cache_unwritable():
        return 2
    progress = stream_progress(quiet=args.quiet)
    if _empty("--data", args.data):
        return 2
    data = Path(args.data) if args.data is not None else ensure_dataset(default_cache_dir(), progress=progress)
    if not data.is_file():
        print(f"pytest-accel: --data={data}: no such file", file=sys.stderr)
        return 2
    source = DetectorSource(model, args.imgsz, default_cache_dir(), allow_unsafe_load=args.allow_unsafe_load)
    try:
        path, scores = record_reference(_references(args), source, data, force=args.force, progress=progress)
    except FileExistsError as error:
        print(f"pytest-accel: {error}", file=sys.stderr)
        return 2
    print(f"fp32 reference: mAP50-95 {scores.map50_95:.4f}, mAP50 {scores.map50:.4f} "
          f"({scores.images} images, {scores.boxes} boxes) -> {path}")
    return 0


def _gesture_reference(args: argparse.Namespace) -> int:
    from pytest_accel.errors import DeviceFailure
    from pytest_accel.workloads.gesture.reference import load_gesture_data, record_reference
    from pytest_accel.workloads.gesture.train import Recipe

    if _empty("--data", args.data):
        return 2
    data_path = Path(args.data) if args.data is not None else None
    if data_path is not None and not data_path.is_file():
        print(f"pytest-accel: --data={data_path}: no such file", file=sys.stderr)
        return 2
    try:
        data = load_gesture_data(data_path)
        path = record_reference(_references(args), data, Recipe(), args.seeds, args.force,
                                stream_progress(quiet=args.quiet))
    except (FileExistsError, ValueError, DeviceFailure) as error:
        print(f"pytest-accel: {error}", file=sys.stderr)
        return 2
    print(f"gesture reference ({args.seeds} seeds, CPU fp32) -> {path}")
    return 0


def _convergence_power(args: argparse.Namespace) -> int:
    import statistics

    from pytest_accel.baselines import BaselineError
    from pytest_accel.convergence import ALPHA, BORDERLINE, Settings, seeds_for_shift, smallest_detected_shift
    from pytest_accel.workloads.gesture.reference import MAX_EPOCHS_TO_TARGET, SUITE
    from pytest_accel.workloads.gesture.train import Recipe

    for name in ("seeds", "confirmation_seeds"):
        if getattr(args, name) < 1:
            print(f"pytest-accel: --{name.replace('_', '-')}={getattr(args, name)}: give at least 1", file=sys.stderr)
            return 2
    if args.draws < 1000:
        print(f"pytest-accel: --draws={args.draws}: give at least 1000 (the rates resolve to about 1/draws)",
              file=sys.stderr)
        return 2
    store = _references(args)
    try:
        reference = store.load(SUITE, args.data_id)
    except BaselineError as error:
        print(f"pytest-accel: {error}", file=sys.stderr)
        return 2
    if reference is None:
        print(f"pytest-accel: no gesture reference {store.path(SUITE, args.data_id)}; record one with pytest-accel "
              "gesture-reference", file=sys.stderr)
        return 2
    try:
        epochs = reference.per_seed(f"{SUITE}.epochs_to_target", 1, MAX_EPOCHS_TO_TARGET, whole=True)
    except BaselineError as error:
        print(f"pytest-accel: {error}", file=sys.stderr)
        return 2
    train_samples = reference.measured.get("train_samples")
    budget = Recipe().epochs_for(train_samples) if isinstance(train_samples, int) and train_samples > 0 else None
    settings = Settings(len(epochs), args.seeds, args.confirmation_seeds, statistics.mean(epochs),
                        statistics.stdev(epochs), budget)
    draws = args.draws
    print(f"{reference.path}: {len(epochs)} reference runs, {settings.mean:.2f} +- {settings.spread:.2f} epochs to "
          "the target")
    print(f"verdict: {args.seeds} seed(s), {args.confirmation_seeds} more when the first look is borderline "
          f"(p < {BORDERLINE:g}), failing at p < {ALPHA:g}; simulated over {draws} draws of normal epochs rounded "
          "to whole epochs")
    print(f"  false alarms (nothing changed): {settings.failing_share(0.0, draws):.2%} of runs; the first look "
          f"alone {settings.failing_share(0.0, draws, 'mean'):.2%}; the spread of trimmed runs (the previous rule) "
          f"{settings.failing_share(0.0, draws, 'trimmed reference'):.2%}")
    for shift in (1.0, 2.0, 3.0, 4.0, 6.0):
        print(f"  {shift:g} epoch(s) slower ({shift / settings.mean:.0%}): caught in "
              f"{settings.failing_share(shift, draws):.1%} of runs")
    smallest = smallest_detected_shift(settings, draws)
    if smallest is not None:
        print(f"  caught 95% of the time: {smallest:g} epochs slower ({smallest / settings.mean:.0%})")
    seeds = seeds_for_shift(settings, 1.0, max(draws // 5, 1000))
    print("  a 1-epoch shift caught 95% of the time needs "
          + (f"about {seeds} reference runs and {seeds} device seeds ({seeds // 2} + {seeds // 2})" if seeds
             else "more than 400 runs a side"))
    return 0


def _devices(args: argparse.Namespace) -> int:
    """What the registered backends (built-in and installed through entry points) find on this machine, opened as a
    pytest run opens them: by the same resolver, with the same settings (fp32 as IEEE unless --allow-tf32, and
    --deterministic), so the keys and facts shown are the run's.

    What a pytest run adds and this cannot: no pytest configuration or conftest is read here, so backends registered
    in a conftest, and the ``pytest_accel_configure_device`` and ``pytest_accel_update_device_info`` hooks (the
    facts they add, a gate check's injected slowdown), are not applied.
    """
    import pytest

    from pytest_accel.devices import BackendRegistry, DeviceSpecError
    from pytest_accel.devices.resolver import DeviceSettings, resolve_devices
    from pytest_accel.plugin import pytest_accel_register_backends, register_entry_point_backends

    registry = BackendRegistry()
    pytest_accel_register_backends(registry)
    settings = DeviceSettings(allow_tf32=args.allow_tf32, deterministic=args.deterministic)
    try:
        register_entry_point_backends(registry)
        devices = resolve_devices(registry, args.device or ("auto",), skip_unavailable=True, settings=settings)
    except (DeviceSpecError, pytest.UsageError) as error:
        print(f"pytest-accel: {error}", file=sys.stderr)
        return 2
    for device in devices:
        if device.available:
            print(f"{device.spec} -> {device.key}  ({device.info.describe()})")
        else:
            print(f"{device.spec}: unavailable ({device.unavailable_reason})")
    print(f"backends: {registry.describe()} (backends of a conftest are not seen here)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Two JSON reports side by side: every metric both hold, with B's value over A's."""
    from pytest_accel.metrics import format_value
    from pytest_accel.report.document import ReportError, load_report, read_metrics
    from pytest_accel.report.lines import aligned_table

    values = []
    for label, path in (("A", args.a), ("B", args.b)):
        try:
            read, unreadable = read_metrics(load_report(Path(path)))
        except ReportError as error:
            print(f"pytest-accel: {error}", file=sys.stderr)
            return 2
        for line in unreadable:
            print(f"pytest-accel: {label} ({path}): left out, not a number to compare: {line}", file=sys.stderr)
        values.append({(r.result["device"], r.result["suite"], r.result["test"], r.metric.name): r.metric
                       for r in read})
    shared = [key for key in values[0] if key in values[1]]
    rows = [["device", "test", "metric", "A", "B", "B/A"]]
    for key in shared:
        a, b = values[0][key], values[1][key]
        ratio = f"{b.value / a.value:.3f}" if a.value else "-"
        rows.append([key[0], f"{key[1]}::{key[2]}", key[3], format_value(a.value, a.unit),
                     format_value(b.value, b.unit), ratio])
    print("\n".join(aligned_table(rows, indent="")))
    only = [len(v) - len(shared) for v in values]
    print(f"{len(shared)} metric(s) in both; only in A: {only[0]}, only in B: {only[1]}")
    return 0


def _add_quiet(command: argparse.ArgumentParser) -> None:
    command.add_argument("-q", "--quiet", action="store_true",
                         help="no progress lines on stderr (and no ultralytics output but its warnings); "
                         "default: a line per phase and about one a second")


def _report(args: argparse.Namespace) -> int:
    """A saved --accel-report rendered as the page --accel-html writes."""
    from pytest_accel.optional import matplotlib_missing
    from pytest_accel.report.document import ReportError, load_report
    from pytest_accel.report.html import write_html

    missing = matplotlib_missing()
    if missing is not None:
        print(f"pytest-accel: report: {missing}", file=sys.stderr)
        return 2
    if len(args.report) > 1 or Path(args.report[0]).is_dir():
        from pytest_accel.report.fleet import run_command

        return run_command(args)
    source = Path(args.report[0])
    try:
        report = load_report(source)
    except ReportError as error:
        print(f"pytest-accel: {error}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else source.with_suffix(".html")
    if out.is_dir():
        print(f"pytest-accel: -o {out}: is a folder; give a file path such as report.html", file=sys.stderr)
        return 2
    # baseline files named relative to where the run started: the report's own folder is the best guess left
    write_html(out, report, base_dir=source.resolve().parent)
    print(f"written: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from pytest_accel import __version__

    parser = argparse.ArgumentParser(
        prog="pytest-accel",
        description="pytest-accel's helpers: list devices and their keys, compare two reports, render one as HTML, "
        "build the bundled "
        "detector, record device-independent references, and measure the speed gate on this machine. The suites "
        "themselves run under pytest: pytest suites --device=cpu (or pytest --pyargs pytest_accel.suites).",
    )
    parser.add_argument("--version", action="version", version=f"pytest-accel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    devices = commands.add_parser("devices", help="list the devices the registered backends find here, with their "
                                  "device keys (the baseline folder names)")
    devices.add_argument("--device", action="append", default=[], metavar="SPEC",
                         help="open these specs instead of discovering (repeatable)")
    devices.add_argument("--allow-tf32", action="store_true",
                         help="let fp32 use TF32 where the device has it, as --accel-allow-tf32 does in a run; "
                         "default: IEEE fp32")
    devices.add_argument("--deterministic", action="store_true",
                         help="ask for deterministic algorithms, as --accel-deterministic does in a run; default: off")
    devices.set_defaults(run=_devices)

    compare = commands.add_parser("compare", help="two --accel-report JSON files side by side, B's value over A's "
                                  "per metric")
    compare.add_argument("a", metavar="A.json")
    compare.add_argument("b", metavar="B.json")
    compare.set_defaults(run=_compare)

    from pytest_accel.ab_command import add_command as add_ab_command
    from pytest_accel.repeat import add_command as add_repeat_command

    add_ab_command(commands)
    add_repeat_command(commands)

    report = commands.add_parser("report", help="render a saved --accel-report JSON file as the self-contained "
                                 "HTML page --accel-html writes; given several reports or a folder of them (from "
                                 "any machines), one fleet comparison of every device side by side (needs "
                                 "pytest-accel[html])")
    report.add_argument("report", metavar="REPORT.json", nargs="+",
                        help="one report, or several reports and folders of reports (a fleet)")
    report.add_argument("-o", "--out", default=None, metavar="PATH",
                        help="one report: the page (default: REPORT with .html in place of .json); a fleet: the "
                        "folder for fleet.html, fleet.md and fleet.json (default ./fleet)")
    report.add_argument("--reference", default=None, metavar="SYSTEM",
                        help="a fleet's speed-ups are over this system: MACHINE/SPEC as the table names it, or a "
                        "device spec or key naming one system (default: the first report's first device)")
    report.set_defaults(run=_report)

    build = commands.add_parser("build-detector", help="train the bundled detector on the generated data set and "
                                "record its fp32 reference")
    from pytest_accel.workloads.detection.model import BUNDLED_WEIGHTS
    from pytest_accel.workloads.gesture.reference import GENERATED_IDENTITY as GENERATED_ID

    build.add_argument("--epochs", type=int, default=60, help="default: 60")
    build.add_argument("--seed", type=int, default=0, help="default: 0")
    build.add_argument("--device", default="cpu", help="ultralytics device string (cpu, 0, ...); default: cpu")
    build.add_argument("--imgsz", type=int, default=320, help="default: 320")
    build.add_argument("--out", default=str(BUNDLED_WEIGHTS), help=f"default: {BUNDLED_WEIGHTS}")
    build.add_argument("--reference-dir", default=None,
                       help="folder of references; default: ini accel_reference_dir, else the bundled suites' own")
    build.add_argument("--force", action="store_true", help="replace existing weights")
    _add_quiet(build)
    build.set_defaults(run=_build_detector)

    reference = commands.add_parser("detection-reference", help="record the fp32 CPU mAP of a model on a data "
                                    "set as the accuracy reference")
    reference.add_argument("--model", default=None, help="weights (.pt) or ONNX; default: the bundled detector")
    reference.add_argument("--data", default=None, help="data set YAML; default: the generated data set")
    reference.add_argument("--imgsz", type=int, default=320, help="default: 320")
    reference.add_argument(UNSAFE_LOAD_OPT_IN, action="store_true",
                           help="load weights that ultralytics' safe loading refuses, with full unpickling: the file "
                           "can then run any code on this machine. Only for files you trust. Default: off")
    reference.add_argument("--reference-dir", default=None,
                       help="folder of references; default: ini accel_reference_dir, else the bundled suites' own")
    reference.add_argument("--force", action="store_true", help="replace an existing reference")
    _add_quiet(reference)
    reference.set_defaults(run=_detection_reference)

    gesture = commands.add_parser("gesture-reference", help="record the gesture classifier's convergence reference "
                                  "(epochs to target and final accuracy over several seeds, CPU fp32)")
    gesture.add_argument("--data", default=None, help="landmark CSV; default: the generated landmarks")
    gesture.add_argument("--seeds", type=int, default=8, help="default: 8")
    gesture.add_argument("--reference-dir", default=None,
                       help="folder of references; default: ini accel_reference_dir, else the bundled suites' own")
    gesture.add_argument("--force", action="store_true", help="replace an existing reference")
    _add_quiet(gesture)
    gesture.set_defaults(run=_gesture_reference)

    power = commands.add_parser(
        "convergence-power",
        help="the gesture convergence verdict's false-alarm rate and the slowdowns it catches, simulated from a "
        "reference's own spread",
        description="Simulates the convergence verdict (reference runs and device seeds drawn from the reference's "
        "own mean and spread, rounded to whole epochs): its false-alarm rate, the share of runs caught per shift "
        "in epochs, the smallest shift caught 95%% of the time, and the seeds a 1-epoch shift would need.",
    )
    power.add_argument("--data-id", default=GENERATED_ID,
                       help=f"the reference's data identity (its file name); default: {GENERATED_ID}")
    power.add_argument("--reference-dir", default=None,
                       help="folder of references; default: ini accel_reference_dir, else the bundled suites' own")
    power.add_argument("--seeds", type=int, default=3, help="device seeds of the first look; default: 3")
    power.add_argument("--confirmation-seeds", type=int, default=3,
                       help="seeds added when the first look is borderline; default: 3")
    power.add_argument("--draws", type=int, default=20000, help="simulated runs per figure; default: 20000")
    power.set_defaults(run=_convergence_power)

    check = commands.add_parser(
        "gate-check",
        help="measure the latency gate on this machine: false alarms of unchanged runs and the slowdowns caught",
        description="Runs the given pytest arguments (timed tests on one or more --device) in separate processes, "
        "RUNS times unchanged and RUNS times with each injected slowdown (real CPU work proportional to every model "
        "call), interleaved; judges each run with the plugin's verdicts against the other unchanged runs as its "
        "history; prints false alarms per run and per metric and the detection rate per slowdown; writes JSON.",
    )
    check.add_argument("--runs", type=int, default=8, help="runs per condition; default: 8")
    check.add_argument("--slowdowns", default="0.05,0.1,0.2", help="injected slowdowns; default: 0.05,0.1,0.2")
    check.add_argument("--alpha", type=float, default=0.01, help="false-alarm rate allowed per run; default: 0.01")
    check.add_argument("--out", default="gate-check.json", help="summary JSON; default: gate-check.json")
    check.add_argument("--work-dir", default=None, help="where the runs' reports go; default: next to --out")
    check.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest arguments")
    _add_quiet(check)
    from pytest_accel.gatecheck_runner import run_gate_check

    check.set_defaults(run=run_gate_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
