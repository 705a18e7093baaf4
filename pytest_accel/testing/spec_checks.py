"""The contract's checks of a backend's specs: parsing, discovery, and opening a device this machine lacks."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from pytest_accel.devices import Backend, Device, DeviceUnavailable
from pytest_accel.testing.base import ContractBase, fail

_SAYS_NONE = re.compile(r"\b(no|none|not|0)\b", re.IGNORECASE)


class SpecChecks(ContractBase):
    """Parsing, discovery and absent devices: what the plugin relies on to turn ``--device`` into a device."""

    # -- parsing -----------------------------------------------------------------------------------------------

    def test_valid_specs_parse_to_a_canonical_spec(self, contract_backend: Backend) -> None:
        if not self.valid_specs:
            fail(f"{type(self).__name__}.valid_specs is empty: list the specs your backend understands")
        for spec in self.valid_specs:
            canonical = contract_backend.parse(spec)
            if not isinstance(canonical, str) or not canonical:
                fail(f"parse({spec!r}) returned {canonical!r}; the contract requires the canonical spec (a "
                     "non-empty string) for every spec in valid_specs")
            again = contract_backend.parse(canonical)
            if again != canonical:
                fail(f"parse({spec!r}) gave {canonical!r}, but parse({canonical!r}) gave {again!r}; a canonical "
                     "spec must parse to itself (the plugin opens what parse returns)")

    def test_invalid_specs_are_not_claimed(self, contract_backend: Backend) -> None:
        for spec in [*self.invalid_specs, "auto", "", ":"]:
            claimed = contract_backend.parse(spec)
            if claimed is not None:
                why = "'auto' is the plugin's own spec" if spec == "auto" else "it is listed in invalid_specs"
                fail(f"parse({spec!r}) returned {claimed!r}; the contract requires None ({why}: a backend "
                     "that claims other specs takes devices away from the backends that own them)")

    def test_grammar_is_one_line_naming_the_spec_forms(self, contract_backend: Backend) -> None:
        grammar = contract_backend.grammar
        if not isinstance(grammar, str) or not grammar.strip() or "\n" in grammar:
            fail(f"grammar is {grammar!r}; the contract requires one non-empty line (it is listed in the error "
                 "for an unknown --device)")
        for spec in self.valid_specs:
            canonical = contract_backend.parse(spec) or spec
            form = canonical.split(":")[0]
            if form.lower() not in grammar.lower():
                fail(f"grammar {grammar!r} does not mention {form!r}, the form of the valid spec {canonical!r}; "
                     "the contract requires it to name every form of spec the backend understands")

    def test_parsing_foreign_specs_imports_nothing(self, import_report: dict[str, Any]) -> None:
        imported = {spec: [name for name in names if name not in sys.stdlib_module_names]
                    for spec, names in import_report["by_spec"].items()}
        culprits = {spec: names for spec, names in imported.items() if names}
        if culprits:
            fail("parsing other backends' specs imported packages: "
                 + "; ".join(f"parse({spec!r}) imported {', '.join(names)}" for spec, names in culprits.items())
                 + "; the contract requires parse to import nothing for specs it plainly does not own (every "
                 "--device value goes through every backend)")
        if not imported:
            pytest.skip("the backend claims every spec in foreign_specs: nothing to check")

    def test_importing_the_backend_imports_no_heavy_library(self, import_report: dict[str, Any]) -> None:
        heavy = sorted(set(import_report["backend_import"]) & set(self.heavy_modules))
        if heavy:
            fail(f"importing the backend's module ({type(self.backend).__module__}) imported {', '.join(heavy)}; "
                 "the contract requires them to be imported only when a device is opened (the plugin loads every "
                 "registered backend in every pytest run)")

    # -- discovery ---------------------------------------------------------------------------------------------

    def test_discover_returns_canonical_specs(self, contract_backend: Backend) -> None:
        found = _discover_or_skip(contract_backend)
        if not isinstance(found, list) or not all(isinstance(spec, str) for spec in found):
            fail(f"discover() returned {found!r}; the contract requires a list of spec strings")
        if len(set(found)) != len(found):
            fail(f"discover() returned {found!r}, with repeats; each device once")
        for spec in found:
            if contract_backend.parse(spec) != spec:
                fail(f"discover() returned {spec!r}, but parse({spec!r}) gives {contract_backend.parse(spec)!r}; "
                     "the contract requires canonical specs (what parse returns for them)")

    def test_discovered_devices_open(self, contract_backend: Backend) -> None:
        for spec in _discover_or_skip(contract_backend):
            try:
                device = contract_backend.open(spec)
            except DeviceUnavailable as error:
                if not error.reason:
                    fail(f"open({spec!r}) raised DeviceUnavailable without a reason")
                continue
            if not isinstance(device, Device) or device.spec != spec:
                fail(f"open({spec!r}) returned {device!r}; the contract requires a Device whose spec is {spec!r}")

    # -- absent devices ----------------------------------------------------------------------------------------

    def test_absent_device_raises_device_unavailable(self, contract_backend: Backend) -> None:
        spec, error = self._open_absent(contract_backend)
        if not isinstance(error, DeviceUnavailable):
            fail(f"open({spec!r}) raised {type(error).__name__}: {error}; the contract requires "
                 "DeviceUnavailable(spec, reason) for a device this machine lacks (the plugin turns it into a "
                 "clear error, or a skip under --accel-skip-unavailable; anything else is a crash)")
        if spec not in str(error) and (self.absent_spec or "") not in str(error):
            fail(f"open({spec!r}) raised {error}; the message must name the device ({spec!r})")
        if not error.reason.strip():
            fail(f"open({spec!r}) raised DeviceUnavailable with an empty reason")

    def test_absent_device_message_says_what_is_available(self, contract_backend: Backend) -> None:
        spec, error = self._open_absent(contract_backend)
        message = str(error)
        try:
            present = contract_backend.discover()
        except DeviceUnavailable:
            present = []
        # a spec, or its device part where that is a name ("ort:cpu" -> "cpu"; not "cuda:1" -> "1")
        names = {name.lower() for found in present for name in (found, found.split(":", 1)[-1])
                 if re.search("[A-Za-z]", name)}
        # a name at the start of a word: "cpu" is named by "CPUExecutionProvider", not by "vcpu"
        if present and not any(re.search(rf"(?<![a-z0-9]){re.escape(name)}", message.lower()) for name in names):
            fail(f"open({spec!r}) failed with {message!r}, which names none of the devices this machine has "
                 f"({', '.join(present)}); the contract requires the message to say what is available")
        if not present and not _SAYS_NONE.search(message):
            fail(f"open({spec!r}) failed with {message!r}; discover() finds no device here, and the message must "
                 "say so (what is available: none)")

    def _open_absent(self, backend: Backend) -> tuple[str, BaseException]:
        if self.absent_spec is None:
            pytest.skip("absent_spec is None: no spec of this backend is sure to name a missing device")
        canonical = backend.parse(self.absent_spec)
        if canonical is None:
            fail(f"parse({self.absent_spec!r}) returned None; absent_spec must be a spec this backend owns")
        try:
            device = backend.open(canonical)
        except Exception as error:  # noqa: BLE001 - what was raised is what is judged
            return canonical, error
        fail(f"open({canonical!r}) returned {device!r}; either this machine has that device (choose another "
             "absent_spec) or open does not check that the device exists: the contract requires DeviceUnavailable")


def _discover_or_skip(backend: Backend) -> list[str]:
    try:
        return backend.discover()
    except DeviceUnavailable as error:
        pytest.skip(f"discover() raised {error}")

