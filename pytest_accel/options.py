"""Command-line and ini options: their names (imported by the tests), the frozen :class:`AccelOptions` they are
read into, and their registration, every one in the one ``accel`` group.

Each value is read and validated once, where it enters, by :mod:`pytest_accel.option_readers`; errors name the
option, the bad value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest

from pytest_accel.disturbance import HOST_BUSY_SHARE
from pytest_accel.metrics import DEFAULT_TOLERANCES, KINDS, METRIC_KINDS
from pytest_accel.timing import PROFILES
from pytest_accel.tolerances import INI_TOLERANCE_PREFIX, OPT_TOLERANCE
from pytest_accel.verdicts import MIN_HISTORY, Policy

OPT_DEVICE = "--device"
#: the namespaced form, always there: ``--device`` is only ours where no other plugin or conftest claims it
OPT_ACCEL_DEVICE = "--accel-device"
DEVICE_DEST = "accel_device"
OPT_SKIP_UNAVAILABLE = "--accel-skip-unavailable"
OPT_WORKER_PER_DEVICE = "--accel-worker-per-device"
OPT_DEVICES_IN_TURNS = "--accel-devices-in-turns"
OPT_PEER_TOLERANCE = "--accel-peer-tolerance"
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
OPT_BENCHMARK_TABLE = "--accel-benchmark-table"
OPT_SUMMARY = "--accel-summary"
OPT_SCORECARD = "--accel-scorecard"
OPT_MANIFEST = "--accel-manifest"
OPT_DATASHEET = "--accel-datasheet"
OPT_HOURLY_PRICE = "--accel-hourly-price"
OPT_CPU_GHZ = "--accel-cpu-ghz"

#: whether this run's ``--device`` is pytest-accel's (set when the initial conftests have registered theirs)
OWNS_SHORT_DEVICE = pytest.StashKey[bool]()

INI_BASELINE_DIR = "accel_baseline_dir"
INI_REFERENCE_DIR = "accel_reference_dir"
INI_GATE = "accel_gate"
INI_ALPHA = "accel_alpha"
INI_BUSY_HOST_SHARE = "accel_busy_host_share"
#: ini twins of the options a CI configuration wants to fix (the command line still wins)
INI_DEVICES = "accel_devices"
INI_PROFILE = "accel_profile"
INI_MISSING = "accel_missing_baseline"
INI_REPORT = "accel_report"
INI_LATENCY_BASIS = "accel_latency_basis"
INI_SUMMARY = "accel_summary"
INI_MANIFESTS = "accel_manifests"

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
    #: other processes' share of the host's CPU time beyond which a slower speed is inconclusive
    busy_host_share: float = HOST_BUSY_SHARE
    #: pytest-benchmark's own table and header line are printed beside the summary
    benchmark_table: bool = False
    #: --accel-scorecard: the folder the per-device scorecards are written to, or None for none
    scorecard_dir: Path | None = None
    #: backend manifests named by --accel-manifest, then by ini accel_manifests (the installed backends' own are
    #: added when the backends are registered)
    manifest_paths: tuple[Path, ...] = ()
    #: --accel-peer-tolerance: how much worse than its peers a device may be (None: each kind's, peers.PEER_TOLERANCES)
    peer_tolerance: float | None = None
    #: --accel-datasheet: the user's datasheet files, over the shipped table (later entries replace earlier ids)
    datasheet_paths: tuple[Path, ...] = ()
    #: --accel-hourly-price: US dollars per device-hour, for the cost per million inferences (None: the datasheet's
    #: cloud price where it gives one)
    hourly_price_usd: float | None = None
    #: --accel-cpu-ghz: the clock the host CPU's peak estimate uses (None: read from the host)
    cpu_ghz: float | None = None

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
            busy_host_share=self.busy_host_share,
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
        OPT_WORKER_PER_DEVICE,
        action="store_true",
        default=False,
        help="under pytest-xdist (-n N): every test of one device runs on one worker, so the devices of a node are "
        "validated at the same time and no two tests ever time one device together (xdist's loadgroup "
        "scheduling, one group per device); with --device=cuda:* for every device of a kind. Default: off.",
    )
    group.addoption(
        OPT_DEVICES_IN_TURNS,
        action="store_true",
        default=False,
        help=f"with {OPT_WORKER_PER_DEVICE}: the devices' workers take turns, a test at a time and their timed "
        "rounds in slices of 0.2 s, for devices that share the host's cores (CPU-backed devices, partitions of one "
        "chip): every device's rounds then span the same stretch of time, so a busy moment of the machine falls on "
        "all of them alike (for the peer check), and no two are timed at once. Default: off.",
    )
    group.addoption(
        OPT_PEER_TOLERANCE,
        default=None,
        metavar="FRACTION",
        help="with three or more devices of one key in a run, each is compared with its peers: flagged when worse "
        "than their median by at least this fraction (0.05: 5%%) and beyond their spread with significance; fails "
        "the run where its kind is gated. Default: latency and throughput 3%%, accuracy 1%%.",
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
        OPT_BENCHMARK_TABLE,
        action="store_true",
        default=False,
        help="print pytest-benchmark's own statistics table and its header line too (hidden while pytest-accel "
        "prints its summary, which shows the same measurements with their verdicts). Default: off.",
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
    group.addoption(
        OPT_MANIFEST,
        action="append",
        default=[],
        metavar="PATH",
        help="a backend manifest (TOML, or YAML with PyYAML): expected failures and unsupported tests of its "
        f"devices, tolerance overrides, a coverage floor; repeatable. Default: ini {INI_MANIFESTS}, plus the "
        "manifests installed backends bring.",
    )
    group.addoption(
        OPT_DATASHEET,
        action="append",
        default=[],
        metavar="FILE",
        help="a datasheet file of your own (TOML, the schema of the shipped table: docs/datasheet.md): entries "
        "added to the shipped ones, an entry with a shipped id replacing it; repeatable. Default: the shipped table.",
    )
    group.addoption(
        OPT_HOURLY_PRICE,
        default=None,
        metavar="USD",
        help="what one device costs per hour, in US dollars: the reports add the cost per million inferences. "
        "Default: the datasheet's public cloud price where it gives one, else no cost.",
    )
    group.addoption(
        OPT_CPU_GHZ,
        default=None,
        metavar="GHZ",
        help="the clock the host CPU's peak estimate uses (e.g. its all-core boost from its datasheet). Default: "
        "the kernel's maximum clock, else the one in the model name, else the one the kernel reports now.",
    )
    group.addoption(
        OPT_SCORECARD,
        default=None,
        metavar="DIR",
        help="write a conformance scorecard per device into DIR: <device key>.md and .json (outcomes per suite and "
        "dtype, accuracy against the reference, parity, the precision that ran, speed and speed-up, energy). "
        "Default: none.",
    )
    parser.addini(INI_BASELINE_DIR, "folder of stored baselines, relative to the ini file", default=None)
    parser.addini(INI_REFERENCE_DIR, "folder of device-independent references, relative to the ini file", default=None)
    parser.addini(INI_GATE, "comma-separated metric kinds that fail tests (see --accel-gate)", default=None)
    parser.addini(INI_ALPHA, f"significance level of the latency test (default {DEFAULT_ALPHA})", default=None)
    parser.addini(INI_BUSY_HOST_SHARE, "share of the host's CPU time other processes may use during a test before "
                  f"its slower speed is inconclusive (default {HOST_BUSY_SHARE}; 1 turns the check off)", default=None)
    parser.addini(INI_DEVICES, "devices under test when no --device is given (space- or comma-separated specs)",
                  default=None)
    parser.addini(INI_PROFILE, "measurement profile (see --accel-profile)", default=None)
    parser.addini(INI_MISSING, "what a metric without baseline does: fail, warn or record", default=None)
    parser.addini(INI_REPORT, "JSON report path, relative to the ini file (see --accel-report)", default=None)
    parser.addini(INI_LATENCY_BASIS, "series speed metrics are judged on (see --accel-latency-basis)", default=None)
    parser.addini(INI_SUMMARY, "terminal summary: compact, full or none (see --accel-summary)", default=None)
    for kind in TOLERANCE_KINDS:
        parser.addini(f"{INI_TOLERANCE_PREFIX}{kind}", f"tolerance for {kind} metrics", default=None)
    parser.addini(INI_MANIFESTS, "backend manifests, one per line, relative to the ini file", type="linelist",
                  default=[])
