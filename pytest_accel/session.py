"""Per-run state: options, backends, resolved devices, the baseline store and every result recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import pytest

from pytest_accel import environment
from pytest_accel.baselines import BaselineError, BaselineStore, may_be_file_of
from pytest_accel.datasheet import Datasheet, DatasheetError
from pytest_accel.datasheet.peaks import DevicePeak, peak_for
from pytest_accel.devices import BackendRegistry, Device, DeviceSpecError, DeviceUnavailable
from pytest_accel.devices.resolver import DeviceSettings, resolve_devices
from pytest_accel.disturbance import HostLoad, probe_time
from pytest_accel.environment import utc_now
from pytest_accel.manifest import Manifest, ManifestPlugin
from pytest_accel.metrics import KINDS, measurement_of
from pytest_accel.options import OPT_SKIP_UNAVAILABLE, AccelOptions
from pytest_accel.references import ReferenceStore
from pytest_accel.verdicts import MIN_HISTORY, Verdict


@dataclass
class TestRecord:
    nodeid: str
    device: Device
    suite: str
    test: str
    baseline_path: Path
    #: where the test file lies (see :func:`pytest_accel.identity.test_location`)
    location: tuple[str, ...] = ()
    #: ``test`` in its parts: the test function, its parameter id without the device's, its accel_variant
    #: (see :func:`pytest_accel.identity.item_identity`); the summary's matrix makes its rows and columns of them
    function: str = ""
    params: str = ""
    variant: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    #: metric names the baseline file held, and those of them the test did not produce
    stored_names: set[str] = field(default_factory=set)
    absent: list[str] = field(default_factory=list)


#: the test's record on its item, for what reports per test (pytest-html's extras)
RECORD_KEY = pytest.StashKey[TestRecord]()
#: the host's CPU use by other processes, measured from a test's setup to its checks
HOST_LOAD_KEY = pytest.StashKey[HostLoad]()


@dataclass
class WrittenBaseline:
    path: Path
    action: str  # "created", "updated" or "recorded"
    changes: list[str]


#: why files that no test used are kept by --accel-prune-baselines (one line each, said in the summary)
KEPT_NODE_IDS = "the run selected tests by node id, so the tests it did not collect may still exist"
KEPT_LAST_FAILED = "--lf collected only the last failures, so the tests it did not collect may still exist"
KEPT_DESELECTED = "their test file was only partly selected (-k, -m, --deselect), so their tests may still exist"
KEPT_OTHER_PARAMETERS = ("their test function was collected in this run, with other parameters, variants or options "
                         "(devices, dtypes, batch sizes, models); delete them by hand if those are gone for good")
KEPT_NOT_BASELINES = ("they do not read as baseline documents of this folder's device (another file kept there, or a "
                      "damaged baseline): pruning deletes only what it can tell is a baseline")


@dataclass(frozen=True)
class UnusedBaselines:
    """Baseline files beside this run's that no test used: those --accel-prune-baselines deletes (their test
    function is gone from a test file this run collected whole) and those it keeps, by the reason it keeps them."""

    deletable: tuple[Path, ...] = ()
    kept: tuple[tuple[str, tuple[Path, ...]], ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(sorted((*self.deletable, *(path for _, paths in self.kept for path in paths))))


class AccelSession:
    """One pytest run's state (in ``config.stash[SESSION_KEY]``): its options and backends, the devices resolved
    from them, the baseline and reference stores, and every test's record."""

    def __init__(self, config: pytest.Config, options: AccelOptions, registry: BackendRegistry,
                 manifests: ManifestPlugin | None = None) -> None:
        self.config = config
        self.options = options
        self.registry = registry
        self.manifests = manifests or ManifestPlugin([])
        self.store = BaselineStore(options.baseline_dir)
        self.references = ReferenceStore(options.reference_dir)
        self.records: list[TestRecord] = []
        self.written: list[WrittenBaseline] = []
        self._devices: list[Device] | None = None
        self._family_size: int | None = None
        self._device_probes: dict[str, tuple[float, ...]] = {}
        self._device_docs: dict[str, BaselineDocuments] = {}
        #: baseline file -> the (test, device) that uses it in this run
        self._claimed: dict[Path, tuple[str, str]] = {}
        #: test files some of whose tests were deselected (-k, -m): pruning keeps their unused baselines
        self.deselected_locations: set[tuple[str, ...]] = set()
        #: (test location, test function) of every collected test that runs on a device, deselected or not: a
        #: baseline file of one of them is never pruned, whatever parameters this run gave it
        self.collected_functions: set[tuple[tuple[str, ...], str]] = set()
        self.pruned: list[Path] = []
        #: scorecard files written at the end of the run (--accel-scorecard)
        self.scorecards: list[Path] = []
        try:
            self.datasheet = Datasheet.load([*options.datasheet_paths, *self._hooked_datasheets()])
        except DatasheetError as error:
            raise pytest.UsageError(f"pytest-accel: {error}") from None
        self._peaks: dict[str, DevicePeak] = {}

    def _hooked_datasheets(self) -> list[Path]:
        given = self.config.hook.pytest_accel_datasheet_files(config=self.config)
        return [Path(path) for paths in given for path in paths]

    def peak_for(self, device: Device) -> DevicePeak:
        """The device's peak (datasheet entry, host estimate or none), worked out once per device."""
        if device.spec not in self._peaks:
            self._peaks[device.spec] = peak_for(device, self.datasheet, cpu_ghz=self.options.cpu_ghz)
        return self._peaks[device.spec]

    def peaks(self) -> dict[str, DevicePeak]:
        """The peaks worked out in this run, per device spec."""
        return dict(self._peaks)

    def manifest_for(self, device: Device) -> Manifest | None:
        """The manifest that speaks for ``device``, if any (see :meth:`ManifestPlugin.manifest_for`)."""
        return self.manifests.manifest_for(device.backend_name, (device.spec, device.key))

    def manifest_tolerances(self, device: Device) -> tuple[Mapping[str, float], str]:
        """The tolerance overrides of the manifest that speaks for ``device`` (none without one), and its name."""
        return self.manifests.tolerances_for(device.backend_name, (device.spec, device.key))

    @property
    def devices_resolved(self) -> bool:
        return self._devices is not None

    def devices(self) -> list[Device]:
        """The devices under test, resolved once: opened by the one resolver with this run's settings, then
        prepared by the ``pytest_accel_configure_device`` hooks and described by ``pytest_accel_update_device_info``."""
        if self._devices is None:
            options = self.options
            settings = DeviceSettings(allow_tf32=options.allow_tf32, deterministic=options.deterministic)
            try:
                devices = resolve_devices(self.registry, options.device_specs, settings=settings,
                                          skip_unavailable=options.skip_unavailable, option=options.device_option)
            except DeviceSpecError as error:
                raise pytest.UsageError(str(error)) from None
            except DeviceUnavailable as error:
                raise pytest.UsageError(f"{options.device_option}={error.spec} is not available: {error.reason}; pass "
                                        f"{OPT_SKIP_UNAVAILABLE} to skip its tests instead") from None
            for device in devices:
                if device.available:
                    self.config.hook.pytest_accel_configure_device(config=self.config, device=device)
                    facts: dict[str, str] = {}
                    self.config.hook.pytest_accel_update_device_info(config=self.config, device=device, facts=facts)
                    device.add_info(facts)
            self._devices = devices
        return self._devices

    def claim_baseline_file(self, path: Path, nodeid: str, device_spec: str) -> None:
        """Two different tests must never share a baseline file: each would judge the other's measurements and
        overwrite them. One test on several devices of one key (identical devices) shares its file for reading, in a
        run that writes no baselines: they are compared with it and with each other (:mod:`pytest_accel.peers`)."""
        owner = (nodeid, device_spec)
        first = self._claimed.setdefault(path, owner)
        if first != owner and first[1] != device_spec:  # one key, one file: identical devices, each other's peers
            if not self.options.writes_baselines:
                return  # each is judged against the one baseline of their model; none writes it
            raise BaselineError(
                f"baseline file {path} belongs to every device of one key, and this run would write it from both "
                f"{first[1]} and {device_spec}; record or update baselines with one device of a key "
                f"({self.options.device_option}={first[1]}), then check all of them in a run that writes none")
        if first != owner:
            raise BaselineError(
                f"baseline file {path} would be shared by {first[0]} on {first[1]} and {nodeid} on {device_spec}; "
                "rename one of the tests or its variant (accel_variant) so that they keep apart"
            )

    def unused_baseline_files(self) -> UnusedBaselines:
        """Baseline files of this run's device keys, beside files this run's tests used, that no test used: the
        baselines of removed or renamed tests, and of parameters, variants or options this run did not ask for.
        Only a file whose test function this run did not collect, from a test file it collected whole, may be
        deleted; every other one is kept, with the reason."""
        used = {record.baseline_path for record in self.records}
        folders: dict[Path, tuple[str, ...]] = {}
        for record in self.records:
            if record.device.available:
                folders.setdefault(record.baseline_path.parent, record.location)
        narrowed = self._collection_narrowed()
        deletable: list[Path] = []
        kept: dict[str, list[Path]] = {}
        for folder, location in sorted(folders.items()):
            functions = [function for where, function in self.collected_functions if where == location]
            for path in sorted(folder.glob("*.json")):
                if path in used:
                    continue
                if narrowed is not None:
                    reason: str | None = narrowed
                elif location in self.deselected_locations:
                    reason = KEPT_DESELECTED
                elif any(may_be_file_of(path.stem, function) for function in functions):
                    reason = KEPT_OTHER_PARAMETERS
                elif not self._reads_as_baseline(path):
                    reason = KEPT_NOT_BASELINES
                else:
                    reason = None
                if reason is None:
                    deletable.append(path)
                else:
                    kept.setdefault(reason, []).append(path)
        return UnusedBaselines(tuple(deletable), tuple((reason, tuple(paths)) for reason, paths in kept.items()))

    def _reads_as_baseline(self, path: Path) -> bool:
        """Whether ``path`` is a baseline document the store reads (valid, and of its folder's device key)."""
        try:
            return self.store.load(path) is not None
        except BaselineError:
            return False

    def _collection_narrowed(self) -> str | None:
        """Why this run's collection may have left out tests of the files it ran (without pytest_deselected)."""
        if any("::" in str(arg) for arg in self.config.args):
            return KEPT_NODE_IDS
        if self.config.getoption("lf", False):
            return KEPT_LAST_FAILED
        return None

    def prune_unused_baselines(self, unused: UnusedBaselines) -> list[Path]:
        """Delete what :meth:`unused_baseline_files` found deletable (--accel-prune-baselines); the rest stays."""
        for path in unused.deletable:
            path.unlink(missing_ok=True)
            self.pruned.append(path)
        return self.pruned

    def speed_family_size(self) -> int:
        """How many speed metrics with a usable history the baselines of this run's devices hold: the family
        whose false alarms are controlled together (each is judged at alpha / this). Counted over every baseline
        of these devices, so a run that selects fewer tests is judged conservatively, never the other way."""
        if self._family_size is None:
            documents = [entry for d in self.devices() if d.available for entry in self._documents(d.key)]
            self._family_size = count_history_metrics(documents, MIN_HISTORY)
        return max(self._family_size, 1)

    def device_probes(self, device_key: str) -> tuple[float, ...]:
        """The calibration probe's times in every baseline of ``device_key`` (read once a run): what the probe
        usually takes on this machine, for metrics whose own baseline has no probe."""
        if device_key not in self._device_probes:
            self._device_probes[device_key] = tuple(device_probe_times(self._documents(device_key)))
        return self._device_probes[device_key]

    def _documents(self, device_key: str) -> BaselineDocuments:
        """The device's baseline documents as the run found them, read once for the family size and the probe."""
        if device_key not in self._device_docs:
            self._device_docs[device_key] = device_documents(self.store, device_key)
        return self._device_docs[device_key]

    @cached_property
    def software(self) -> dict[str, str]:
        return environment.software_stack()

    @cached_property
    def git_commit(self) -> str | None:
        return environment.git_commit(self.config.rootpath)

    def header(self, device: Device) -> dict[str, Any]:
        return {
            "device_key": device.key,
            "device": device.info.to_dict(),
            "software": self.software,
            "git_commit": self.git_commit,
            "recorded_at": utc_now(),
        }


BaselineDocuments = list[tuple[Path, Mapping[str, Any]]]


def device_documents(store: BaselineStore, device_key: str) -> BaselineDocuments:
    """Every readable baseline document of ``device_key``, with its path; a damaged file is skipped (the test that
    uses it fails with the reason)."""
    folder = store.root / device_key
    documents: BaselineDocuments = []
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            document = store.load(path)
        except BaselineError:
            continue
        if document is not None:
            documents.append((path, document))
    return documents


def count_history_metrics(documents: BaselineDocuments, min_history: int) -> int:
    """How many independent speed measurements with a usable history these baseline documents hold. The latency
    and throughput of one measurement come from the same rounds and always agree, so they count once."""
    measurements: set[tuple[Path, str]] = set()
    for path, document in documents:
        for name, record in document.get("metrics", {}).items():
            speed = KINDS.get(record.get("kind"), KINDS["info"]).speed
            if speed and len(record.get("history") or []) >= min_history:
                measurements.add((path, measurement_of(name, record.get("kind", ""))))
    return len(measurements)


def device_probe_times(documents: BaselineDocuments) -> list[float]:
    """Every probe time these baseline documents hold: each speed metric's history runs', and the probe samples'
    median of a metric stored without a history."""
    times: list[float] = []
    for _, document in documents:
        for record in document.get("metrics", {}).values():
            history = [float(h["probe"]) for h in record.get("history") or [] if h.get("probe")]
            if history:
                times.extend(history)
            elif (median := probe_time(record.get("probe_samples"))) is not None:
                times.append(median)
    return [t for t in times if t > 0]


#: the run's session on its config
SESSION_KEY = pytest.StashKey[AccelSession]()
