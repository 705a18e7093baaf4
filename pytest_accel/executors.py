"""Who runs the timed rounds: a local loop, or pytest-benchmark's fixture behind the same interface.

pytest-benchmark is used for what it does well (its statistics table, ``--benchmark-json`` and compare tooling see
the same rounds); this module is the only place that knows its fixture's internals.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    import pytest

#: pytest-benchmark's storage when none is given: a folder it makes in the current directory whenever it starts
BENCHMARK_DEFAULT_STORAGE = "file://./.benchmarks"
#: pytest-benchmark's options that read or write its storage
BENCHMARK_STORAGE_OPTIONS = ("benchmark_save", "benchmark_autosave", "benchmark_compare", "benchmark_compare_fail")


def keep_benchmark_storage_out_of_the_project(config: pytest.Config, cache: Path) -> None:
    """Point pytest-benchmark's default storage into ``cache`` for a run that saves and compares nothing: it would
    make an empty ``.benchmarks`` folder in the project it runs in (a checkout, say) and never use it. A run that
    saves or compares, or names its own storage, keeps pytest-benchmark's behaviour. Must run before
    pytest-benchmark's ``pytest_configure`` (which is trylast); xdist workers get the option as the controller set it.
    """
    option = config.option
    if getattr(option, "benchmark_storage", None) != BENCHMARK_DEFAULT_STORAGE:
        return
    if any(getattr(option, name, None) for name in BENCHMARK_STORAGE_OPTIONS):
        return
    option.benchmark_storage = f"file://{cache / 'pytest-benchmark'}"


class RoundExecutor(Protocol):
    #: recorded with every measurement: "local" or "pytest-benchmark"
    name: str

    def run(self, target: Callable[[], None], before_each: Callable[[], None], rounds: int) -> list[float]:
        """Seconds of each of ``rounds`` calls of ``target``; ``before_each`` runs, untimed, before every call."""
        ...

    def annotate(self, facts: Mapping[str, Any]) -> None:
        """Attach ``facts`` to the executor's own records, where it keeps any."""
        ...


class LocalExecutor:
    """Our own loop. ``records``, when given, receives each measurement's facts (a later measurement of a test whose
    first one pytest-benchmark timed: its JSON then holds every measurement, not only the first)."""

    name = "local"

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self._records = records

    def run(self, target: Callable[[], None], before_each: Callable[[], None], rounds: int) -> list[float]:
        samples = []
        for _ in range(rounds):
            before_each()
            start = time.perf_counter()
            target()
            samples.append(time.perf_counter() - start)
        return samples

    def annotate(self, facts: Mapping[str, Any]) -> None:
        if self._records is not None:
            self._records.append(dict(facts))


class BenchmarkExecutor:
    """pytest-benchmark's ``pedantic`` mode: our round count, no warm-up (done before), one call per round."""

    name = "pytest-benchmark"

    def __init__(self, fixture: Any) -> None:
        self._fixture = fixture

    def run(self, target: Callable[[], None], before_each: Callable[[], None], rounds: int) -> list[float]:
        self._fixture.pedantic(target, setup=before_each, rounds=rounds, warmup_rounds=0, iterations=1)
        return list(self._fixture.stats.stats.data)

    def annotate(self, facts: Mapping[str, Any]) -> None:
        self._fixture.extra_info.update(facts)


class TestExecutors:
    """The executors of one test: pytest-benchmark's fixture for its first measurement (the fixture times one
    thing per test), the local loop for every later one and whenever pytest-benchmark is off."""

    __test__ = False  # not a test class, whatever pytest's collection patterns say

    def __init__(self, request: pytest.FixtureRequest, use_pytest_benchmark: bool) -> None:
        self._request = request
        self._benchmark_available = use_pytest_benchmark
        #: the later measurements' facts, in the benchmark's ``extra_info["accel_measurements"]``
        self._later: list[dict[str, Any]] | None = None

    def next(self) -> RoundExecutor:
        if not self._benchmark_available:
            return LocalExecutor(self._later)
        self._benchmark_available = False
        fixture = self._request.getfixturevalue("benchmark")
        if getattr(fixture, "enabled", False):
            self._later = fixture.extra_info.setdefault("accel_measurements", [])
            return BenchmarkExecutor(fixture)
        # pytest-benchmark disabled itself (under xdist, say): we time locally, and its fixture must not report
        # itself "unused" at teardown
        fixture.skipped = True
        return LocalExecutor()
