"""Reading the options once into the frozen :class:`~pytest_accel.options.AccelOptions`: one reader per option (or
per group of options that are only valid together), each validating where the value enters.

Errors are :class:`~pytest_accel.errors.OptionError` naming the option or ini key, the bad value and what is
allowed; the plugin reports them as ``pytest.UsageError``.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

from pytest_accel.disturbance import HOST_BUSY_SHARE
from pytest_accel.errors import OptionError
from pytest_accel.metrics import METRIC_KINDS
from pytest_accel.optional import matplotlib_missing
from pytest_accel.options import (
    DEFAULT_ALPHA,
    DEVICE_DEST,
    INI_ALPHA,
    INI_BASELINE_DIR,
    INI_BUSY_HOST_SHARE,
    INI_DEVICES,
    INI_GATE,
    INI_LATENCY_BASIS,
    INI_MANIFESTS,
    INI_MISSING,
    INI_PROFILE,
    INI_REFERENCE_DIR,
    INI_REPORT,
    INI_SUMMARY,
    MISSING_CHOICES,
    OPT_ACCEL_DEVICE,
    OPT_ALLOW_TF32,
    OPT_BASELINE_DIR,
    OPT_BENCHMARK_TABLE,
    OPT_CPU_GHZ,
    OPT_DATASHEET,
    OPT_DETERMINISTIC,
    OPT_DEVICE,
    OPT_FAIL_FASTER_CONVERGENCE,
    OPT_FAIL_INCONCLUSIVE,
    OPT_GATE,
    OPT_HOURLY_PRICE,
    OPT_HTML,
    OPT_INJECT_SLOWDOWN,
    OPT_LATENCY_BASIS,
    OPT_MANIFEST,
    OPT_MISSING,
    OPT_PEER_TOLERANCE,
    OPT_PROFILE,
    OPT_PRUNE,
    OPT_RECORD_RUN,
    OPT_REFERENCE_DIR,
    OPT_REPORT,
    OPT_SCORECARD,
    OPT_SKIP_UNAVAILABLE,
    OPT_SUMMARY,
    OPT_UPDATE,
    OWNS_SHORT_DEVICE,
    SUMMARY_CHOICES,
    TOLERANCE_KINDS,
    AccelOptions,
)
from pytest_accel.timing import PROFILES
from pytest_accel.tolerances import (
    INI_TOLERANCE_PREFIX,
    OPT_TOLERANCE,
    check_tolerance_range,
    parse_cli_tolerances,
    parse_tolerance_value,
)
from pytest_accel.verdicts import LATENCY_BASES


class WriteModes(NamedTuple):
    """The three options that decide what a run writes, checked together: some pairs contradict each other."""

    update: bool
    record_run: bool
    missing: str

    @property
    def writes(self) -> bool:
        return self.update or self.record_run or self.missing == "record"

    def why_writable(self) -> str:
        """Which option makes the baseline folder need to be writable, for the error that says it is not."""
        option = OPT_UPDATE if self.update else OPT_RECORD_RUN if self.record_run else f"{OPT_MISSING}=record"
        return f"{option} writes baselines there"


def read_options(config: pytest.Config) -> AccelOptions:
    """Every pytest-accel option of this run, read and validated once (in this order: the first bad one is named)."""
    getoption = config.getoption
    ini_dir = _ini_dir(config)
    device_option = read_device_option(config)
    specs = _read_device_specs(config, device_option)
    profile = _from_cli_or_ini(config, OPT_PROFILE, INI_PROFILE, None, tuple(PROFILES))
    modes = _read_write_modes(config)
    basis = _from_cli_or_ini(config, OPT_LATENCY_BASIS, INI_LATENCY_BASIS, "auto", LATENCY_BASES) or "auto"
    summary = _read_summary(config)
    reference_dir = _read_reference_dir(config, ini_dir)
    baseline_dir = _read_baseline_dir(config, ini_dir, modes)
    gate = _read_gate(config)
    ini_tolerances = _read_ini_tolerances(config)
    alpha = _read_alpha(config)
    report_path = _read_report_path(config, ini_dir)
    html_path = _read_html_path(config)
    return AccelOptions(
        device_specs=specs or ("cpu",),
        explicit_devices=bool(specs),
        skip_unavailable=bool(getoption(OPT_SKIP_UNAVAILABLE)),
        profile=profile,
        baseline_dir=baseline_dir,
        reference_dir=reference_dir,
        update_baselines=modes.update,
        missing_baseline=modes.missing,
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
        use_pytest_benchmark=_pytest_benchmark_enabled(config),
        allow_tf32=bool(getoption(OPT_ALLOW_TF32)),
        deterministic=bool(getoption(OPT_DETERMINISTIC)),
        record_run=modes.record_run,
        prune_baselines=bool(getoption(OPT_PRUNE)),
        fail_inconclusive=bool(getoption(OPT_FAIL_INCONCLUSIVE)),
        fail_faster_convergence=bool(getoption(OPT_FAIL_FASTER_CONVERGENCE)),
        inject_slowdown=_read_slowdown(getoption(OPT_INJECT_SLOWDOWN)),
        summary=summary,
        busy_host_share=_read_busy_host_share(config),
        benchmark_table=bool(getoption(OPT_BENCHMARK_TABLE)) or summary == "none",
        scorecard_dir=_read_scorecard_dir(config),
        manifest_paths=_read_manifest_paths(config, ini_dir),
        peer_tolerance=_read_peer_tolerance(getoption(OPT_PEER_TOLERANCE)),
        datasheet_paths=tuple(_given_path(config, text) for text in getoption(OPT_DATASHEET) or []),
        hourly_price_usd=_read_positive(OPT_HOURLY_PRICE, getoption(OPT_HOURLY_PRICE), "US dollars per hour",
                                        upper=1e6),
        cpu_ghz=_read_positive(OPT_CPU_GHZ, getoption(OPT_CPU_GHZ), "GHz", upper=10.0),
    )


def _read_positive(option: str, text: str | None, unit: str, *, upper: float) -> float | None:
    """A positive number given on the command line, or None when not given."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= upper):
        raise OptionError(f"{option} {text!r}: expected a number of {unit} above 0 and at most {upper:g}")
    return value


def read_device_option(config: pytest.Config) -> str:
    """How devices are given in this run: ``--device``, or ``--accel-device`` where something else owns ``--device``."""
    return OPT_DEVICE if config.stash.get(OWNS_SHORT_DEVICE, True) else OPT_ACCEL_DEVICE


def _ini_dir(config: pytest.Config) -> Path:
    """What ini paths are relative to: the ini file's folder, else the rootdir."""
    return Path(config.inipath).parent if config.inipath else config.rootpath


def _given_path(config: pytest.Config, text: str) -> Path:
    """A path given on the command line: relative to where pytest was started."""
    return Path(config.invocation_params.dir) / Path(text).expanduser()


def _read_device_specs(config: pytest.Config, device_option: str) -> tuple[str, ...]:
    specs = tuple(spec.strip() for spec in config.getoption(DEVICE_DEST) or [] if spec is not None)
    if not specs and config.getini(INI_DEVICES):
        specs = tuple(part for part in str(config.getini(INI_DEVICES)).replace(",", " ").split() if part)
    if any(not spec for spec in specs):
        raise OptionError(f"{device_option}='': empty device spec; use e.g. {device_option}=cpu")
    if "auto" in specs and len(set(specs)) > 1:
        raise OptionError(
            f"{device_option}=auto selects every available device; do not combine it with "
            + ", ".join(f"{device_option}={s}" for s in specs if s != "auto")
        )
    return specs


def _read_write_modes(config: pytest.Config) -> WriteModes:
    missing = _from_cli_or_ini(config, OPT_MISSING, INI_MISSING, "warn", MISSING_CHOICES) or "warn"
    update = bool(config.getoption(OPT_UPDATE))
    record_run = bool(config.getoption(OPT_RECORD_RUN))
    if update and record_run:
        raise OptionError(f"{OPT_UPDATE} starts every speed metric's history anew and {OPT_RECORD_RUN} adds to it; "
                          "give one of the two")
    if record_run and missing == "fail":
        raise OptionError(f"{OPT_RECORD_RUN} records what has no baseline, so {OPT_MISSING}=fail cannot apply")
    if update and missing == "fail":
        raise OptionError(
            f"{OPT_UPDATE} records every metric, so {OPT_MISSING}=fail cannot apply; drop one of the two"
        )
    return WriteModes(update, record_run, missing)


def _read_summary(config: pytest.Config) -> str:
    # -v asks pytest for more detail, so it means the full tables unless the option or the ini chose a form
    return _from_cli_or_ini(config, OPT_SUMMARY, INI_SUMMARY, None, SUMMARY_CHOICES) or (
        "full" if config.get_verbosity() >= 1 else "compact"
    )


def _read_baseline_dir(config: pytest.Config, ini_dir: Path, modes: WriteModes) -> Path:
    """The option (relative to where pytest started), else the ini key (relative to its file), else baselines/ under
    the rootdir; writable when this run writes baselines, and never a file."""
    given = config.getoption(OPT_BASELINE_DIR)
    if given:
        folder, source = _given_path(config, given), OPT_BASELINE_DIR
    elif config.getini(INI_BASELINE_DIR):
        folder, source = ini_dir / str(config.getini(INI_BASELINE_DIR)), f"ini {INI_BASELINE_DIR}"
    else:
        folder, source = config.rootpath / "baselines", "baseline folder"
    folder = folder.resolve()
    if modes.writes:
        check_writable(source, folder, modes.why_writable())
    elif folder.exists() and not folder.is_dir():
        raise OptionError(f"{source}={folder}: not a folder")
    return folder


def _read_reference_dir(config: pytest.Config, ini_dir: Path) -> Path:
    from pytest_accel.references import shipped_reference_dir

    given = config.getoption(OPT_REFERENCE_DIR)
    if given:
        folder, source = _given_path(config, given), OPT_REFERENCE_DIR
    elif config.getini(INI_REFERENCE_DIR):
        folder, source = ini_dir / str(config.getini(INI_REFERENCE_DIR)), f"ini {INI_REFERENCE_DIR}"
    else:
        return shipped_reference_dir()
    if not folder.is_dir():
        raise OptionError(f"{source}={folder}: no such folder (it holds <suite>/<name>.json references; the "
                          f"bundled suites' own are used when neither {OPT_REFERENCE_DIR} nor the ini key is given)")
    return folder.resolve()


def _read_gate(config: pytest.Config) -> frozenset[str]:
    text = config.getoption(OPT_GATE)
    if text is not None:
        return parse_gate(OPT_GATE, text)
    if config.getini(INI_GATE):
        return parse_gate(f"ini {INI_GATE}", str(config.getini(INI_GATE)))
    return frozenset(METRIC_KINDS)


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


def _read_ini_tolerances(config: pytest.Config) -> dict[str, float]:
    tolerances: dict[str, float] = {}
    for kind in TOLERANCE_KINDS:
        name = f"{INI_TOLERANCE_PREFIX}{kind}"
        text = config.getini(name)
        if text not in (None, "", []):
            value = parse_tolerance_value(f"ini {name}", kind, str(text).strip())
            tolerances[kind] = check_tolerance_range(f"ini {name}", kind, kind, value)
    return tolerances


def _read_alpha(config: pytest.Config) -> float:
    text = config.getini(INI_ALPHA)
    if text in (None, "", []):
        return DEFAULT_ALPHA
    alpha = parse_tolerance_value(f"ini {INI_ALPHA}", "alpha", str(text).strip())
    if not 0 < alpha < 1:
        raise OptionError(f"ini {INI_ALPHA}={text!r} must be between 0 and 1 (exclusive)")
    return alpha


def _read_busy_host_share(config: pytest.Config) -> float:
    text = config.getini(INI_BUSY_HOST_SHARE)
    if text in (None, "", []):
        return HOST_BUSY_SHARE
    share = parse_tolerance_value(f"ini {INI_BUSY_HOST_SHARE}", "share", str(text).strip())
    if not 0 < share <= 1:
        raise OptionError(f"ini {INI_BUSY_HOST_SHARE}={text!r} must be above 0 and at most 1 (1: never inconclusive "
                          "for other processes' CPU use)")
    return share


def _read_report_path(config: pytest.Config, ini_dir: Path) -> Path | None:
    given = config.getoption(OPT_REPORT)
    if given:
        text, path, source = given, _given_path(config, given).resolve(), OPT_REPORT
    elif config.getini(INI_REPORT):
        text = str(config.getini(INI_REPORT))
        path, source = (ini_dir / Path(text).expanduser()).resolve(), f"ini {INI_REPORT}"
    else:
        return None
    if path.is_dir():
        raise OptionError(f"{OPT_REPORT}={text}: is a folder; give a file path such as accel-report.json")
    reason = unwritable_folder(path.parent)
    if reason is not None:
        raise OptionError(f"{source}={text}: the report cannot be written in {path.parent}: {reason}")
    return path


def _read_html_path(config: pytest.Config) -> Path | None:
    given = config.getoption(OPT_HTML)
    if not given:
        return None
    path = _given_path(config, given).resolve()
    if path.is_dir():
        raise OptionError(f"{OPT_HTML}={given}: is a folder; give a file path such as accel-report.html")
    reason = unwritable_folder(path.parent)
    if reason is not None:
        raise OptionError(f"{OPT_HTML}={given}: the page cannot be written in {path.parent}: {reason}")
    missing = matplotlib_missing()
    if missing is not None:
        raise OptionError(f"{OPT_HTML}={given}: {missing}")
    return path


def _read_slowdown(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 10:
        raise OptionError(f"{OPT_INJECT_SLOWDOWN}={text!r}: expected a fraction between 0 and 10, e.g. 0.1 for 10%")
    return value


def _read_peer_tolerance(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise OptionError(f"{OPT_PEER_TOLERANCE}={text!r}: expected a fraction from 0 up to 1, e.g. 0.05 for 5%")
    return value


def _read_scorecard_dir(config: pytest.Config) -> Path | None:
    """Where the scorecards go, relative to where pytest was started; made when they are written."""
    given = config.getoption(OPT_SCORECARD)
    return _given_path(config, given) if given else None


def _read_manifest_paths(config: pytest.Config, ini_dir: Path) -> tuple[Path, ...]:
    """The option's manifests (relative to where pytest was started), then the ini key's (relative to its file);
    each is checked when it is loaded, beside those the backends bring."""
    given = [_given_path(config, text) for text in config.getoption(OPT_MANIFEST) or []]
    return (*given, *(ini_dir / line for line in config.getini(INI_MANIFESTS)))


def _pytest_benchmark_enabled(config: pytest.Config) -> bool:
    if not config.pluginmanager.hasplugin("benchmark"):
        return False
    return not (config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False))


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


def unwritable_out_message(path: Path) -> str | None:
    """What a subcommand's ``--out`` folder says where no file can be made in it (checked before any run)."""
    reason = unwritable_folder(path)
    return None if reason is None else f"--out {path}: {reason}; give a folder this user can write"


def check_writable(option: str, path: Path, why: str) -> None:
    reason = unwritable_folder(path)
    if reason is not None:
        raise OptionError(f"{option}={path}: {reason} ({why})")
