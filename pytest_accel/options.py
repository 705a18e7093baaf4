"""Command-line and ini options: their names (imported by the tests), registration and validation.

Every value is validated here, where it enters; errors name the option, the bad value and what is allowed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest

from pytest_accel.metrics import DEFAULT_TOLERANCES, KINDS, METRIC_KINDS
from pytest_accel.timing import PROFILES
from pytest_accel.tolerances import (
    INI_TOLERANCE_PREFIX,
    OPT_TOLERANCE,
    OptionError,
    check_tolerance_range,
    parse_cli_tolerances,
    parse_tolerance_value,
)
from pytest_accel.verdicts import LATENCY_BASES, MIN_HISTORY, Policy

OPT_DEVICE = "--device"
#: the namespaced form, always there: ``--device`` is only ours where no other plugin or conftest claims it
OPT_ACCEL_DEVICE = "--accel-device"
DEVICE_DEST = "accel_device"
OPT_SKIP_UNAVAILABLE = "--accel-skip-unavailable"
OPT_PROFILE = "--accel-profile"
OPT_BASELINE_DIR = "--accel-baseline-dir"
OPT_REFERENCE_DIR = "--accel-reference-dir"
OPT_UPDATE = "--accel-update-baselines"
OPT_MISSING = "--accel-missing-baseline"
OPT_GATE = "--accel-gate"
OPT_LATENCY_BASIS = "--accel-latency-basis"
OPT_REPORT = "--accel-report"
OPT_HTML = "--accel-html"
OPT_ALLOW_TF32 = "--accel-allow-tf32"
OPT_RECORD_RUN = "--accel-record-run"
OPT_FAIL_INCONCLUSIVE = "--accel-fail-inconclusive"
OPT_FAIL_FASTER_CONVERGENCE = "--accel-fail-faster-convergence"
OPT_INJECT_SLOWDOWN = "--accel-inject-slowdown"
OPT_DETERMINISTIC = "--accel-deterministic"
OPT_PRUNE = "--accel-prune-baselines"
OPT_SUMMARY = "--accel-summary"

#: whether this run's ``--device`` is pytest-accel's (set when the initial conftests have registered theirs)
OWNS_SHORT_DEVICE = pytest.StashKey[bool]()

INI_BASELINE_DIR = "accel_baseline_dir"
INI_REFERENCE_DIR = "accel_reference_dir"
INI_GATE = "accel_gate"
INI_ALPHA = "accel_alpha"
#: ini twins of the options a CI configuration wants to fix (the command line still wins)
INI_DEVICES = "accel_devices"
INI_PROFILE = "accel_profile"
INI_MISSING = "accel_missing_baseline"
INI_REPORT = "accel_report"
INI_LATENCY_BASIS = "accel_latency_basis"
INI_SUMMARY = "accel_summary"

MISSING_CHOICES = ("fail", "warn", "record")
#: how much of the terminal summary is printed (see :mod:`pytest_accel.report.terminal`)
SUMMARY_CHOICES = ("compact", "full", "none")
DEFAULT_ALPHA = 0.01
#: kinds whose tolerance is an absolute bound, by default the metric's own limit
BOUND_KIND_NAMES = tuple(name for name, kind in KINDS.items() if kind.judgement == "bound")
#: every kind an ini tolerance can be given for: relative defaults first, then the bounds
TOLERANCE_KINDS = (*DEFAULT_TOLERANCES, *BOUND_KIND_NAMES)


@dataclass(frozen=True)
class AccelOptions:
    device_specs: tuple[str, ...]
    skip_unavailable: bool
    profile: str | None
    baseline_dir: Path
    #: device-independent references: the option, the ini key, else those shipped with the bundled suites
    reference_dir: Path
    update_baselines: bool
    missing_baseline: str
    gate: frozenset[str]
    cli_tolerances: Mapping[str, float]
    ini_tolerances: Mapping[str, float]
    alpha: float
    latency_basis: str
    report_path: Path | None
    #: --accel-html: the page of the run's report (needs matplotlib, the html extra)
    html_path: Path | None = None
    explicit_devices: bool = field(default=False)
    #: where pytest was started, and with which arguments (for paths and commands shown to the user)
    invocation_dir: Path = field(default_factory=Path.cwd)
    invocation_args: tuple[str, ...] = ()
    #: how devices are given in this run: --device, or --accel-device where something else owns --device
    device_option: str = OPT_DEVICE
    #: the positional arguments among them (test files, folders, node ids)
    invocation_paths: tuple[str, ...] = ()
    #: --accel-baseline-dir exactly as given (repeated in the update commands we print), or None
    baseline_dir_arg: str | None = None
    #: pytest-benchmark is installed and enabled: it runs each test's first timed measurement
    use_pytest_benchmark: bool = False
    #: fp32 work may use TF32 where the device has it (parity bounds then follow TF32)
    allow_tf32: bool = False
    #: deterministic algorithms asked for before any workload runs
    deterministic: bool = False
    #: add this run to the speed metrics' histories (and write what has no baseline)
    record_run: bool = False
    #: delete unused baseline files at the end of the run
    prune_baselines: bool = False
    fail_inconclusive: bool = False
    #: a convergence faster than the reference allows fails instead of reading "faster?"
    fail_faster_convergence: bool = False
    #: the gate self-check's injected slowdown (0.1 = every model call 10% slower), 0 for none
    inject_slowdown: float = 0.0
    #: the terminal summary's form: compact, full or none
    summary: str = "compact"

    @property
    def writes_baselines(self) -> bool:
        return self.update_baselines or self.record_run or self.missing_baseline == "record"

    @property
    def policy(self) -> Policy:
        return Policy(
            gate=self.gate,
            alpha=self.alpha,
            latency_basis=self.latency_basis,
            update=self.update_baselines or self.record_run,
            record_missing=self.missing_baseline == "record",
            fail_inconclusive=self.fail_inconclusive,
            fail_faster_convergence=self.fail_faster_convergence,
        )


DEVICE_OPTION: dict[str, Any] = {
    "action": "append",
    "default": [],
    "dest": DEVICE_DEST,
    "metavar": "SPEC",
    "help": "device to run the suites on, repeatable: cpu, cuda, cuda:N, mps, xpu[:N], a PrivateUse1 name, "
    "ort:<provider> (ort:cpu, ort:cuda, ort:tensorrt, ...), or auto for every available device. --device is the "
    "same option where no other plugin or conftest claims that name. Default: cpu.",
}


def claimed_option_names(parser: pytest.Parser) -> set[str]:
    """Every option name registered so far, by any plugin or conftest."""
    groups = [*parser._groups, parser._anonymous]  # pytest keeps no public list of them
    return {name for group in groups for option in group.options for name in option.names()}


def add_short_device_option(parser: pytest.Parser) -> bool:
    """Add ``--device`` as the short form of ``--accel-device`` unless something claimed it; True when added."""
    if OPT_DEVICE in claimed_option_names(parser):
        return False
    parser.getgroup("accel").addoption(OPT_DEVICE, **DEVICE_OPTION)
    return True


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("accel", "pytest-accel: accelerator conformance and performance")
    group.addoption(OPT_ACCEL_DEVICE, **DEVICE_OPTION)
    group.addoption(
        OPT_SKIP_UNAVAILABLE,
        action="store_true",
        default=False,
        help="skip, with the reason, the tests of a requested device that is not on this machine instead of "
        "stopping with an error. Default: off.",
    )
    group.addoption(
        OPT_PROFILE,
        default=None,
        metavar="NAME",
        help="measurement profile: "
        + "; ".join(f"{p.name} ({p.description})" for p in PROFILES.values())
        + f". Default: ini {INI_PROFILE}, else quick on CPU devices, standard on accelerators.",
    )
    group.addoption(
        OPT_BASELINE_DIR,
        default=None,
        metavar="DIR",
        help=f"folder of stored baselines. Default: ini {INI_BASELINE_DIR}, else baselines/ under the rootdir.",
    )
    group.addoption(
        OPT_REFERENCE_DIR,
        default=None,
        metavar="DIR",
        help=f"folder of device-independent references (<suite>/<name>.json). Default: ini {INI_REFERENCE_DIR}, "
        "else the references shipped with the bundled suites, wherever the baselines are kept.",
    )
    group.addoption(
        OPT_UPDATE,
        action="store_true",
        default=False,
        help="write every measured metric to its baseline file (atomically), pass, and list what changed. "
        "Default: off.",
    )
    group.addoption(
        OPT_MISSING,
        default=None,
        metavar="MODE",
        help="when a metric has no baseline: fail the test, warn (pass and list it in the summary) or record it. "
        f"Default: ini {INI_MISSING}, else warn.",
    )
    group.addoption(
        OPT_GATE,
        default=None,
        metavar="KINDS",
        help=f"comma-separated metric kinds whose regressions fail tests ({', '.join(METRIC_KINDS)}), or all, or "
        f"none; the others are reported only. Default: ini {INI_GATE}, else all.",
    )
    group.addoption(
        OPT_TOLERANCE,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a tolerance, repeatable; KEY is a metric kind or a full metric name (with a dot, e.g. "
        "matmul.latency). Precedence: marker > this option > ini accel_tolerance_<kind> > built-in default. "
        "Default: " + ", ".join(f"{k}={v:g}" for k, v in DEFAULT_TOLERANCES.items())
        + f", {' and '.join(BOUND_KIND_NAMES)}=the metric's limit.",
    )
    group.addoption(
        OPT_LATENCY_BASIS,
        default=None,
        metavar="BASIS",
        help="which series of a speed metric is judged: absolute; normalised (divided by the calibration probe "
        "run interleaved on the same device); adjusted (the probe as a control variate, with the workload's "
        "sensitivity to it learned from the run history); both (absolute and normalised must agree); or auto "
        "(adjusted lower quartiles when the history has them, else the best series it has; both while there is "
        "no history). Default: auto.",
    )
    group.addoption(
        OPT_RECORD_RUN,
        action="store_true",
        default=False,
        help="add this run to the baselines' run history of every speed metric (latency, throughput, first run), "
        f"so verdicts can see the run-to-run noise: record a baseline with {OPT_UPDATE} once, then add runs with "
        f"this option (a history of {MIN_HISTORY} or more runs is used). Tests pass as under {OPT_UPDATE}. "
        "Default: off.",
    )
    group.addoption(
        OPT_PRUNE,
        action="store_true",
        default=False,
        help="at the end of the run, delete the baseline files that the summary lists as unused: files of this run's "
        "device keys beside the files its tests used that no test used (removed or renamed tests, and variants or "
        "dtypes this run did not ask for: run it with the full configuration). Test files only partly selected "
        "(-k, -m) are left alone. Default: off.",
    )
    group.addoption(
        OPT_FAIL_INCONCLUSIVE,
        action="store_true",
        default=False,
        help="fail speed checks that are inconclusive because the machine was disturbed (the calibration probe or "
        "the round-time spread far outside their history) instead of reporting them. Default: off.",
    )
    group.addoption(
        OPT_FAIL_FASTER_CONVERGENCE,
        action="store_true",
        default=False,
        help="fail convergence checks whose runs reach the target in significantly fewer epochs than the reference's "
        "(as MLPerf fails results faster than its reference band: often a changed recipe or a broken evaluation) "
        "instead of reporting them as 'faster?'. Default: off.",
    )
    group.addoption(
        OPT_INJECT_SLOWDOWN,
        default=None,
        metavar="FRACTION",
        help="for the gate self-check (pytest-accel gate-check): make every model call on the devices under test "
        "this much slower with real CPU work proportional to the call's own time (0.1 = 10%%). Default: none.",
    )
    group.addoption(
        OPT_REPORT,
        default=None,
        metavar="PATH",
        help="write a JSON record of every measurement, with device info, software stack and verdicts. "
        "Default: no file.",
    )
    group.addoption(
        OPT_HTML,
        default=None,
        metavar="PATH",
        help="write one self-contained HTML page of the run (the JSON report's content: verdicts per device, "
        "speed-ups, sample distributions against the baselines, throughput by batch size, training curves, parity "
        "per dtype); needs matplotlib (pip install 'pytest-accel[html]'). Default: no file.",
    )
    group.addoption(
        OPT_SUMMARY,
        default=None,
        metavar="FORM",
        help="the terminal summary: compact (one matrix of metric by device and dtype with verdict marks, then "
        "every verdict that is not a pass with its reason, then what needs attention), full (a table per device "
        "with baselines and deltas, the devices side by side with speed-ups, and every list in full) or none "
        "(only the warnings that a gate checked less than it seems, and the JSON report's path). "
        f"Default: ini {INI_SUMMARY}, else full under -v, else compact.",
    )
    group.addoption(
        OPT_ALLOW_TF32,
        action="store_true",
        default=False,
        help="let fp32 matmuls and convolutions use TF32 on devices that have it (NVIDIA Ampere and later), as "
        "deployments often do; fp32 parity is then held to TF32 bounds. Without it fp32 means IEEE fp32 wherever "
        "the runtime lets us choose (TensorRT's TF32 tactics stay on unless NVIDIA_TF32_OVERRIDE=0). Default: off.",
    )
    group.addoption(
        OPT_DETERMINISTIC,
        action="store_true",
        default=False,
        help="enable deterministic algorithms before any workload (torch.use_deterministic_algorithms, "
        "CUBLAS_WORKSPACE_CONFIG=:4096:8, cuDNN without autotuning), so devices other than the CPU are held to "
        "bit-identical reruns; recorded in the report. Default: off.",
    )
    parser.addini(INI_BASELINE_DIR, "folder of stored baselines, relative to the ini file", default=None)
    parser.addini(INI_REFERENCE_DIR, "folder of device-independent references, relative to the ini file", default=None)
    parser.addini(INI_GATE, "comma-separated metric kinds that fail tests (see --accel-gate)", default=None)
    parser.addini(INI_ALPHA, f"significance level of the latency test (default {DEFAULT_ALPHA})", default=None)
    parser.addini(INI_DEVICES, "devices under test when no --device is given (space- or comma-separated specs)",
                  default=None)
    parser.addini(INI_PROFILE, "measurement profile (see --accel-profile)", default=None)
    parser.addini(INI_MISSING, "what a metric without baseline does: fail, warn or record", default=None)
    parser.addini(INI_REPORT, "JSON report path, relative to the ini file (see --accel-report)", default=None)
    parser.addini(INI_LATENCY_BASIS, "series speed metrics are judged on (see --accel-latency-basis)", default=None)
    parser.addini(INI_SUMMARY, "terminal summary: compact, full or none (see --accel-summary)", default=None)
    for kind in TOLERANCE_KINDS:
        parser.addini(f"{INI_TOLERANCE_PREFIX}{kind}", f"tolerance for {kind} metrics", default=None)


def parse_gate(source: str, text: str) -> frozenset[str]:
    words = [word.strip() for word in text.split(",") if word.strip()]
    if words == ["all"]:
        return frozenset(METRIC_KINDS)
    if words == ["none"]:
        return frozenset()
    unknown = [word for word in words if word not in METRIC_KINDS]
    if unknown or not words:
        raise OptionError(
            f"{source}={text!r}: unknown kind {', '.join(map(repr, unknown)) or '(empty)'}; allowed: "
            f"{', '.join(METRIC_KINDS)}, all, none"
        )
    return frozenset(words)


def _from_cli_or_ini(config: pytest.Config, option: str, ini: str, default: str | None,
                     allowed: tuple[str, ...]) -> str | None:
    """The option's value if given, else its ini twin's, else ``default``; either must be one of ``allowed``."""
    value = config.getoption(option)
    if value is not None:
        return _choice(option, value, allowed)
    text = config.getini(ini)
    if text:
        return _choice(f"ini {ini}", str(text).strip(), allowed)
    return default


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise OptionError(f"{option}={value!r} is not allowed; choose one of: {', '.join(allowed)}")
    return value


def unwritable_folder(path: Path) -> str | None:
    """Why no file can be made in folder ``path`` (created if needed), or None when one can: permission bits alone
    mislead root, so a file is really made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        return "exists and is not a folder"
    except OSError as error:
        return f"not writable: {error.strerror or error}"
    return None


def check_writable(option: str, path: Path, why: str) -> None:
    reason = unwritable_folder(path)
    if reason is not None:
        raise OptionError(f"{option}={path}: {reason} ({why})")


def _reference_dir(config: pytest.Config, ini_dir: Path) -> Path:
    from pytest_accel.references import shipped_reference_dir

    given = config.getoption(OPT_REFERENCE_DIR)
    if given:
        folder = Path(given).expanduser()
        folder = folder if folder.is_absolute() else Path(config.invocation_params.dir) / folder
        source = OPT_REFERENCE_DIR
    elif config.getini(INI_REFERENCE_DIR):
        folder, source = ini_dir / str(config.getini(INI_REFERENCE_DIR)), f"ini {INI_REFERENCE_DIR}"
    else:
        return shipped_reference_dir()
    if not folder.is_dir():
        raise OptionError(f"{source}={folder}: no such folder (it holds <suite>/<name>.json references; the "
                          f"bundled suites' own are used when neither {OPT_REFERENCE_DIR} nor the ini key is given)")
    return folder.resolve()


def read_options(config: pytest.Config) -> AccelOptions:
    getoption = config.getoption
    device_option = OPT_DEVICE if config.stash.get(OWNS_SHORT_DEVICE, True) else OPT_ACCEL_DEVICE
    specs = tuple(spec.strip() for spec in getoption(DEVICE_DEST) or [] if spec is not None)
    if not specs and config.getini(INI_DEVICES):
        specs = tuple(part for part in str(config.getini(INI_DEVICES)).replace(",", " ").split() if part)
    if any(not spec for spec in specs):
        raise OptionError(f"{device_option}='': empty device spec; use e.g. {device_option}=cpu")
    if "auto" in specs and len(set(specs)) > 1:
        raise OptionError(
            f"{device_option}=auto selects every available device; do not combine it with "
            + ", ".join(f"{device_option}={s}" for s in specs if s != "auto")
        )
    profile = _from_cli_or_ini(config, OPT_PROFILE, INI_PROFILE, None, tuple(PROFILES))
    missing = _from_cli_or_ini(config, OPT_MISSING, INI_MISSING, "warn", MISSING_CHOICES) or "warn"
    update = bool(getoption(OPT_UPDATE))
    record_run = bool(getoption(OPT_RECORD_RUN))
    if update and record_run:
        raise OptionError(f"{OPT_UPDATE} starts every speed metric's history anew and {OPT_RECORD_RUN} adds to it; "
                          "give one of the two")
    if record_run and missing == "fail":
        raise OptionError(f"{OPT_RECORD_RUN} records what has no baseline, so {OPT_MISSING}=fail cannot apply")
    if update and missing == "fail":
        raise OptionError(
            f"{OPT_UPDATE} records every metric, so {OPT_MISSING}=fail cannot apply; drop one of the two"
        )
    basis = _from_cli_or_ini(config, OPT_LATENCY_BASIS, INI_LATENCY_BASIS, "auto", LATENCY_BASES) or "auto"
    # -v asks pytest for more detail, so it means the full tables unless the option or the ini chose a form
    summary = _from_cli_or_ini(config, OPT_SUMMARY, INI_SUMMARY, None, SUMMARY_CHOICES) or (
        "full" if config.get_verbosity() >= 1 else "compact"
    )

    ini_dir = Path(config.inipath).parent if config.inipath else config.rootpath
    if getoption(OPT_BASELINE_DIR):
        baseline_dir = Path(getoption(OPT_BASELINE_DIR)).expanduser()
        if not baseline_dir.is_absolute():
            baseline_dir = Path(config.invocation_params.dir) / baseline_dir
        baseline_source = OPT_BASELINE_DIR
    elif config.getini(INI_BASELINE_DIR):
        baseline_dir = ini_dir / str(config.getini(INI_BASELINE_DIR))
        baseline_source = f"ini {INI_BASELINE_DIR}"
    else:
        baseline_dir = config.rootpath / "baselines"
        baseline_source = "baseline folder"
    baseline_dir = baseline_dir.resolve()
    reference_dir = _reference_dir(config, ini_dir)
    if update or record_run or missing == "record":
        why = f"{OPT_UPDATE if update else OPT_RECORD_RUN if record_run else f'{OPT_MISSING}=record'} writes " \
              "baselines there"
        check_writable(baseline_source, baseline_dir, why)
    elif baseline_dir.exists() and not baseline_dir.is_dir():
        raise OptionError(f"{baseline_source}={baseline_dir}: not a folder")

    gate_text = getoption(OPT_GATE)
    if gate_text is not None:
        gate = parse_gate(OPT_GATE, gate_text)
    elif config.getini(INI_GATE):
        gate = parse_gate(f"ini {INI_GATE}", str(config.getini(INI_GATE)))
    else:
        gate = frozenset(METRIC_KINDS)

    ini_tolerances: dict[str, float] = {}
    for kind in TOLERANCE_KINDS:
        name = f"{INI_TOLERANCE_PREFIX}{kind}"
        text = config.getini(name)
        if text not in (None, "", []):
            value = parse_tolerance_value(f"ini {name}", kind, str(text).strip())
            ini_tolerances[kind] = check_tolerance_range(f"ini {name}", kind, kind, value)
    alpha_text = config.getini(INI_ALPHA)
    alpha = DEFAULT_ALPHA
    if alpha_text not in (None, "", []):
        alpha = parse_tolerance_value(f"ini {INI_ALPHA}", "alpha", str(alpha_text).strip())
        if not 0 < alpha < 1:
            raise OptionError(f"ini {INI_ALPHA}={alpha_text!r} must be between 0 and 1 (exclusive)")

    report = getoption(OPT_REPORT)
    report_path = None
    if not report and config.getini(INI_REPORT):
        report = str(config.getini(INI_REPORT))
        report_path = (ini_dir / Path(report).expanduser()).resolve()
    elif report:
        report_path = (Path(config.invocation_params.dir) / Path(report).expanduser()).resolve()
    if report_path is not None:
        if report_path.is_dir():
            raise OptionError(f"{OPT_REPORT}={report}: is a folder; give a file path such as accel-report.json")
        source = OPT_REPORT if getoption(OPT_REPORT) else f"ini {INI_REPORT}"
        reason = unwritable_folder(report_path.parent)
        if reason is not None:
            raise OptionError(f"{source}={report}: the report cannot be written in {report_path.parent}: {reason}")

    html_path = _html_path(config)

    return AccelOptions(
        device_specs=specs or ("cpu",),
        explicit_devices=bool(specs),
        skip_unavailable=bool(getoption(OPT_SKIP_UNAVAILABLE)),
        profile=profile,
        baseline_dir=baseline_dir,
        reference_dir=reference_dir,
        update_baselines=update,
        missing_baseline=missing,
        gate=gate,
        cli_tolerances=parse_cli_tolerances(getoption(OPT_TOLERANCE) or []),
        ini_tolerances=ini_tolerances,
        alpha=alpha,
        latency_basis=basis,
        report_path=report_path,
        html_path=html_path,
        invocation_dir=Path(config.invocation_params.dir),
        invocation_args=tuple(config.invocation_params.args),
        device_option=device_option,
        invocation_paths=tuple(getattr(config.option, "file_or_dir", None) or ()),
        baseline_dir_arg=getoption(OPT_BASELINE_DIR) or None,
        use_pytest_benchmark=_pytest_benchmark_enabled(config),
        allow_tf32=bool(getoption(OPT_ALLOW_TF32)),
        deterministic=bool(getoption(OPT_DETERMINISTIC)),
        record_run=record_run,
        prune_baselines=bool(getoption(OPT_PRUNE)),
        fail_inconclusive=bool(getoption(OPT_FAIL_INCONCLUSIVE)),
        fail_faster_convergence=bool(getoption(OPT_FAIL_FASTER_CONVERGENCE)),
        inject_slowdown=_slowdown(getoption(OPT_INJECT_SLOWDOWN)),
        summary=summary,
    )


def _html_path(config: pytest.Config) -> Path | None:
    given = config.getoption(OPT_HTML)
    if not given:
        return None
    path = (Path(config.invocation_params.dir) / Path(given).expanduser()).resolve()
    if path.is_dir():
        raise OptionError(f"{OPT_HTML}={given}: is a folder; give a file path such as accel-report.html")
    reason = unwritable_folder(path.parent)
    if reason is not None:
        raise OptionError(f"{OPT_HTML}={given}: the page cannot be written in {path.parent}: {reason}")
    from pytest_accel.report.plots import matplotlib_missing

    missing = matplotlib_missing()
    if missing is not None:
        raise OptionError(f"{OPT_HTML}={given}: {missing}")
    return path


def _slowdown(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 10:
        raise OptionError(f"{OPT_INJECT_SLOWDOWN}={text!r}: expected a fraction between 0 and 10, e.g. 0.1 for 10%")
    return value


def _pytest_benchmark_enabled(config: pytest.Config) -> bool:
    if not config.pluginmanager.hasplugin("benchmark"):
        return False
    return not (config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False))
