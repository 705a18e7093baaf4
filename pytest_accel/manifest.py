"""Backend manifests: what a vendor commits to for its devices, kept beside the backend.

A manifest (TOML; YAML where PyYAML is installed) lists the tests its devices are expected to fail and those they
do not support, per-metric tolerance overrides, and a coverage floor — the ideas of ONNX Runtime's per-provider test
filters and its minimum-node-cases floor. It comes from ``--accel-manifest PATH`` or from the backend itself
(:attr:`pytest_accel.devices.Backend.manifest_path`, so an installed backend brings its own)::

    [manifest]
    backend = "openvino"          # the devices it speaks for: this backend's (default: every device)
    devices = ["ov:NPU*"]         # and of those, these specs or keys (fnmatch; default: all)
    strict = true                 # an expected failure that passes fails the run, so the manifest stays true
    min_tests = 12                # a full run executing fewer tests on any of these devices fails
    min_delegation = 0.7          # ahead-of-time compiled models (ExecuTorch, LiteRT): operators delegated to the
                                  # accelerator / all at least this, else detection.delegation_coverage fails

    [[expected_failures]]
    test = "test_parity"          # fnmatch on the node id, on it without parameters, or on the test's name
    dtype = "bf16"                # optional: only this parametrisation
    reason = "bf16 head rounding, tracked as NPU-123"

    [[unsupported]]
    test = "suites/test_gesture.py::*"
    reason = "no training on this NPU"

    [tolerances]
    "detection.map50_95" = 0.02   # a metric name, or a kind (latency = 0.2)

    [floors]                      # shares of the datasheet's peak (ceiling tests), shown in the scorecard
    "ceiling.matmul.bf16.share_of_peak" = 0.6

Expected failures run and are reported as xfail; unsupported tests are skipped with the manifest's reason.
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pytest

from pytest_accel.errors import OptionError
from pytest_accel.metrics import KINDS
from pytest_accel.paths import display_path
from pytest_accel.tolerances import check_tolerance_key, check_tolerance_range, parse_floors, parse_tolerance_value

ManifestError = pytest.UsageError

_TOP_KEYS = {"manifest", "expected_failures", "unsupported", "tolerances", "floors"}
_HEADER_KEYS = {"backend", "devices", "strict", "min_tests", "min_delegation"}
_ENTRY_KEYS = {"test", "dtype", "devices", "reason"}
#: how a test the manifest does not support is skipped (the scorecard counts such skips as "unsupported")
UNSUPPORTED_REASON = "unsupported (manifest "


def _shown(value: Any) -> str:
    """A name from the file as one printable line: plain names as they are, anything else as its repr."""
    text = str(value)
    return text if isinstance(value, str) and text.isprintable() else repr(value)


def _reject_unknown(where: str, given: Mapping[Any, Any], allowed: set[str], what: str = "key(s)") -> None:
    unknown = sorted(_shown(key) for key in given if key not in allowed)
    if unknown:
        raise ManifestError(f"{where}: unknown {what} {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


@dataclass(frozen=True)
class ManifestEntry:
    test: str
    reason: str
    dtype: str | None = None
    devices: tuple[str, ...] = ()

    def matches(self, item: pytest.Item, device_names: tuple[str, ...]) -> bool:
        if self.devices and not _any_match(device_names, self.devices):
            return False
        if self.dtype is not None and self.dtype not in _parameter_values(item):
            return False
        return _any_match(_test_names(item), (self.test,))


@dataclass(frozen=True)
class Manifest:
    path: Path
    backend: str | None = None
    devices: tuple[str, ...] = ()
    strict: bool = False
    min_tests: int | None = None
    #: the least share of a compiled model's operators its delegate must take (None: reported, not gated)
    min_delegation: float | None = None
    expected_failures: tuple[ManifestEntry, ...] = ()
    unsupported: tuple[ManifestEntry, ...] = ()
    tolerances: Mapping[str, float] = field(default_factory=dict)

    def speaks_for(self, backend_name: str, device_names: tuple[str, ...]) -> bool:
        if self.backend is not None and self.backend != backend_name:
            return False
        return not self.devices or _any_match(device_names, self.devices)

    def classify(self, item: pytest.Item, device_names: tuple[str, ...]) -> tuple[str, ManifestEntry] | None:
        """("unsupported" | "xfail", the entry) for a test this manifest speaks about, else None."""
        for kind, entries in (("unsupported", self.unsupported), ("xfail", self.expected_failures)):
            for entry in entries:
                if entry.matches(item, device_names):
                    return kind, entry
        return None


def _any_match(names: tuple[str, ...], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


def _test_names(item: pytest.Item) -> tuple[str, ...]:
    """The node id, the node id without parameters and the test's own name: what a pattern may name."""
    bare_id = item.nodeid.split("[", 1)[0]
    name = getattr(item, "originalname", item.name)
    return (item.nodeid, bare_id, name)


def _parameter_values(item: pytest.Item) -> set[str]:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return set()
    values = {str(v) for v in callspec.params.values() if isinstance(v, (str, int, float))}
    return values | set(callspec.id.split("-"))


def _load_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"manifest {path}: cannot be read as UTF-8 text: {_shown(str(error))}") from None
    if path.suffix.lower() == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ManifestError(f"manifest {path}: not valid TOML: {error}") from None
        except RecursionError:
            raise ManifestError(f"manifest {path}: not valid TOML: nested too deeply") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ManifestError(f"manifest {path}: YAML manifests need PyYAML (pip install pyyaml); or write it as "
                                "TOML") from None
        try:
            return yaml.safe_load(text) or {}
        except RecursionError:
            raise ManifestError(f"manifest {path}: not valid YAML: nested too deeply") from None
        except (yaml.YAMLError, ValueError, OverflowError) as error:  # ValueError: a date like 2024-13-45
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ManifestError(f"manifest {path}: not valid YAML: {_shown(first_line)}") from None
    raise ManifestError(f"manifest {path}: expected a .toml, .yaml or .yml file")


def _strings(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ManifestError(f"{where}: expected a pattern or a list of patterns, got {value!r}")


def _entries(path: Path, section: str, value: Any) -> tuple[ManifestEntry, ...]:
    if not isinstance(value, list):
        raise ManifestError(f"manifest {path}: [{section}] must be a list of tables ([[{section}]])")
    entries = []
    for index, raw in enumerate(value, 1):
        where = f"manifest {path}: {section} #{index}"
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: expected a table with test and reason")
        _reject_unknown(where, raw, _ENTRY_KEYS)
        test, reason = raw.get("test"), raw.get("reason")
        if not isinstance(test, str) or not test.strip():
            raise ManifestError(f"{where}: 'test' must name a test pattern (e.g. test_parity or suites/test_x.py::*)")
        if not isinstance(reason, str) or not reason.strip():
            raise ManifestError(f"{where} ({_shown(test)}): 'reason' is required: say why, so the report can")
        dtype = raw.get("dtype")
        if dtype is not None and (not isinstance(dtype, str) or not dtype):
            raise ManifestError(f"{where} ({_shown(test)}): 'dtype' must be a dtype name such as fp32 or bf16")
        devices = _strings(f"{where} ({_shown(test)}) devices", raw["devices"]) if "devices" in raw else ()
        entries.append(ManifestEntry(test.strip(), reason.strip(), dtype, devices))
    return tuple(entries)


def _tolerances(path: Path, value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ManifestError(f"manifest {path}: [tolerances] must be a table of metric name or kind = number")
    source = f"manifest {path} [tolerances]"
    result = {}
    for key, raw in value.items():
        try:
            name = check_tolerance_key(source, _shown(key))
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise OptionError(f"{source}: {name}={raw!r} is not a number; expected a non-negative number such "
                                  "as 0.05")
            number = parse_tolerance_value(source, name, raw)
            result[name] = check_tolerance_range(source, name, name, number) if name in KINDS else number
        except OptionError as error:
            raise ManifestError(str(error)) from None
    return result


def _floors(path: Path, value: Any) -> dict[str, float]:
    try:
        return parse_floors(f"manifest {path} [floors]", value)
    except OptionError as error:
        raise ManifestError(str(error)) from None


def load_manifest(path: Path) -> Manifest:
    """The manifest at ``path``, validated; a bad one is one line naming the file, the entry and what is allowed."""
    if not path.is_file():
        raise ManifestError(f"manifest {path}: no such file")
    document = _load_document(path)
    if not isinstance(document, dict):
        raise ManifestError(f"manifest {path}: expected a table at the top")
    _reject_unknown(f"manifest {path}", document, _TOP_KEYS, "section(s)")
    header = document.get("manifest", {})
    if not isinstance(header, dict):
        raise ManifestError(f"manifest {path}: [manifest] must be a table")
    _reject_unknown(f"manifest {path}", header, _HEADER_KEYS, "key(s) in [manifest]:")
    backend = header.get("backend")
    if backend is not None and (not isinstance(backend, str) or not backend):
        raise ManifestError(f"manifest {path}: backend must be a backend name such as openvino")
    strict = header.get("strict", False)
    if not isinstance(strict, bool):
        raise ManifestError(f"manifest {path}: strict must be true or false, got {strict!r}")
    min_tests = header.get("min_tests")
    if min_tests is not None and (isinstance(min_tests, bool) or not isinstance(min_tests, int) or min_tests < 1):
        raise ManifestError(f"manifest {path}: min_tests must be a whole number >= 1, got {min_tests!r}")
    min_delegation = header.get("min_delegation")
    if min_delegation is not None and (isinstance(min_delegation, bool) or not isinstance(min_delegation, (int, float))
                                       or not 0 < min_delegation <= 1):
        raise ManifestError(f"manifest {path}: min_delegation must be a share of operators above 0 and at most 1 (e.g. "
                            f"0.7), got {min_delegation!r}")
    return Manifest(
        path=path,
        backend=backend,
        devices=_strings(f"manifest {path}: devices", header["devices"]) if "devices" in header else (),
        strict=strict,
        min_tests=min_tests,
        min_delegation=float(min_delegation) if min_delegation is not None else None,
        expected_failures=_entries(path, "expected_failures", document.get("expected_failures", [])),
        unsupported=_entries(path, "unsupported", document.get("unsupported", [])),
        tolerances=_tolerances(path, document.get("tolerances", {})) | _floors(path, document.get("floors", {})),
    )


#: carried by each test report (through pytest-xdist too): which manifest the test's device answers to, and the device
_PROPERTY = "accel_manifest"
_DEVICE_PROPERTY = "accel_manifest_device"
#: the manifest entries whose test pattern names the test (``expected_failures #1,unsupported #2``)
_PATTERNS_PROPERTY = "accel_manifest_patterns"


def _entry_ids(manifest: Manifest) -> list[tuple[str, ManifestEntry]]:
    return [(f"{section} #{index}", entry)
            for section, entries in (("expected_failures", manifest.expected_failures),
                                     ("unsupported", manifest.unsupported))
            for index, entry in enumerate(entries, 1)]


@dataclass(frozen=True)
class ManifestFailure:
    """Why a manifest failed a run whose tests passed, counted in pytest's closing line (``1 passed, 1 manifest
    failed``) so that line does not read as a pass."""

    message: str


@dataclass
class ManifestTally:
    executed: int = 0
    #: tests executed per device spec: the coverage floor holds for each device
    by_device: dict[str, int] = field(default_factory=dict)
    xfailed: int = 0
    unexpected_passes: list[str] = field(default_factory=list)
    unsupported: int = 0
    #: the entries whose test pattern named a collected test
    matched_patterns: set[str] = field(default_factory=set)


class ManifestPlugin:
    """Applies manifests to the collected tests, counts what ran on their devices, and holds each run to its
    manifests' coverage floors."""

    def __init__(self, manifests: list[Manifest]) -> None:
        self.manifests = manifests
        self.tallies = {manifest.path: ManifestTally() for manifest in manifests}
        self.partial_run = False

    def manifest_for(self, backend_name: str, device_names: tuple[str, ...]) -> Manifest | None:
        """The first manifest speaking for this device: those given by option or ini before the backends' own."""
        return next((m for m in self.manifests if m.speaks_for(backend_name, device_names)), None)

    def tolerances_for(self, backend_name: str, device_names: tuple[str, ...]) -> tuple[Mapping[str, float], str]:
        manifest = self.manifest_for(backend_name, device_names)
        return (manifest.tolerances, f"manifest {manifest.path.name}") if manifest else ({}, "")

    def apply(self, item: pytest.Item, backend_name: str, device_names: tuple[str, ...]) -> None:
        manifest = self.manifest_for(backend_name, device_names)
        if manifest is None:
            return
        item.user_properties.append((_PROPERTY, str(manifest.path)))
        item.user_properties.append((_DEVICE_PROPERTY, device_names[0]))
        names = _test_names(item)
        matched = [entry_id for entry_id, entry in _entry_ids(manifest) if _any_match(names, (entry.test,))]
        if matched:
            item.user_properties.append((_PATTERNS_PROPERTY, ",".join(matched)))
        found = manifest.classify(item, device_names)
        if found is None:
            return
        kind, entry = found
        where = f"manifest {manifest.path.name}"
        if kind == "unsupported":
            item.add_marker(pytest.mark.skip(reason=f"{UNSUPPORTED_REASON}{manifest.path.name}): {entry.reason}"))
        else:
            item.add_marker(pytest.mark.xfail(reason=f"expected failure ({where}): {entry.reason}",
                                              strict=manifest.strict))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        # a run narrowed to some tests cannot be held to a floor set for the whole suite
        self.partial_run = bool(config.option.keyword or config.option.markexpr or config.getoption("lf", False)
                                or any("::" in str(arg) for arg in config.args))

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        if items:
            self.partial_run = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = next((Path(str(value)) for name, value in report.user_properties if name == _PROPERTY), None)
        tally = self.tallies.get(path) if path is not None else None
        if tally is None:
            return
        if report.when == "setup":
            for name, value in report.user_properties:
                if name == _PATTERNS_PROPERTY:
                    tally.matched_patterns.update(str(value).split(","))
        if report.when == "setup" and report.skipped and UNSUPPORTED_REASON in str(report.longrepr):
            tally.unsupported += 1
        if report.when != "call":
            return
        tally.executed += 1
        spec = next((str(value) for name, value in report.user_properties if name == _DEVICE_PROPERTY), "")
        tally.by_device[spec] = tally.by_device.get(spec, 0) + 1
        if hasattr(report, "wasxfail"):
            if report.skipped:
                tally.xfailed += 1
            else:  # passed although expected to fail
                tally.unexpected_passes.append(report.nodeid)
        elif report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):  # pytest's strict unexpected pass
            tally.unexpected_passes.append(report.nodeid)

    def below_floor(self) -> list[tuple[Manifest, str, int]]:
        """(manifest, device, tests it ran) for each device of this run that ran fewer than its manifest's floor."""
        if self.partial_run:
            return []
        return [(m, spec, count) for m in self.manifests if m.min_tests is not None
                for spec, count in self.tallies[m.path].by_device.items() if count < m.min_tests]

    def stale_patterns(self) -> list[tuple[Manifest, str, ManifestEntry]]:
        """(manifest, entry id, entry) for each entry of a strict manifest whose test pattern named no test of a
        whole run that the manifest spoke for: a renamed test or a typo, which would leave the manifest untrue."""
        if self.partial_run:
            return []
        return [(m, entry_id, entry) for m in self.manifests if m.strict and self.tallies[m.path].by_device
                for entry_id, entry in _entry_ids(m) if entry_id not in self.tallies[m.path].matched_patterns]

    def failures(self) -> list[str]:
        """Why the manifests fail this run, one line each."""
        failures = [f"manifest {m.path.name}: {count} test(s) ran on {spec}, below its coverage floor of "
                    f"{m.min_tests} (min_tests)" for m, spec, count in self.below_floor()]
        failures += [f"manifest {m.path.name}: {entry_id} test = {entry.test!r} names no test of this run (strict)"
                     for m, entry_id, entry in self.stale_patterns()]
        return failures

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        failures = self.failures() if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) else []
        if not failures:
            return
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        # pytest prints this red just above its closing line, which counts each failure beside the tests
        session.shouldfail = f"pytest-accel: {failures[0]}" + (f" (and {len(failures) - 1} more)"
                                                                if len(failures) > 1 else "")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.stats.setdefault("manifest failed", []).extend(ManifestFailure(f) for f in failures)

    def summary_lines(self) -> list[tuple[str, dict[str, bool]]]:
        lines: list[tuple[str, dict[str, bool]]] = []
        below: dict[Path, list[tuple[str, int]]] = {}
        for manifest, spec, count in self.below_floor():
            below.setdefault(manifest.path, []).append((spec, count))
        for manifest in self.manifests:
            tally = self.tallies[manifest.path]
            if not (tally.executed or tally.unsupported or manifest.path in below):
                continue
            floor = f" (floor {manifest.min_tests} per device)" if manifest.min_tests else ""
            shown = display_path(manifest.path, Path.cwd())
            text = (f"manifest {shown}: {tally.executed} test(s) ran{floor}, {tally.xfailed} expected failure(s), "
                    f"{tally.unsupported} unsupported")
            lines.append((text, {}))
            for nodeid in tally.unexpected_passes:
                state = "failed (strict)" if manifest.strict else "reported"
                lines.append((f"  !! unexpected pass, {state}: {nodeid}: remove it from the manifest's expected "
                              "failures", {"yellow": not manifest.strict, "red": manifest.strict}))
            for _, entry_id, entry in [stale for stale in self.stale_patterns() if stale[0] is manifest]:
                lines.append((f"  !! STALE PATTERN: {entry_id} test = {entry.test!r} names no test of this run; the "
                              "manifest is strict: fix or remove the entry", {"red": True, "bold": True}))
            for spec, count in below.get(manifest.path, []):
                lines.append((f"  !! COVERAGE FLOOR: {count} test(s) ran on {spec}, fewer than the "
                              f"{manifest.min_tests} the manifest commits to: the run fails",
                              {"red": True, "bold": True}))
            if manifest.min_tests and self.partial_run:
                lines.append(("  (a partial run, -k/-m/deselected tests: the coverage floor is not applied)", {}))
        return lines


def load_manifests(paths: Iterable[Path], backends: Iterable[Any]) -> list[Manifest]:
    """The manifests at ``paths`` (``--accel-manifest``, then ini ``accel_manifests``: see
    :attr:`~pytest_accel.options.AccelOptions.manifest_paths`), then those the registered backends bring; each once."""
    all_paths = list(paths)
    for backend in backends:
        own = getattr(backend, "manifest_path", None)
        if own is not None:
            all_paths.append(Path(own))
    seen: set[Path] = set()
    manifests = []
    for path in all_paths:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            manifests.append(load_manifest(resolved))
    return manifests
