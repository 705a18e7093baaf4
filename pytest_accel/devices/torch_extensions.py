"""Vendors' PyTorch device extensions, known by their device names before they are installed.

PyTorch itself knows only its built-in device types; an accelerator vendor's extension adds its device, either under
PyTorch's one PrivateUse1 slot (torch_npu registers ``npu``) or by running a device type PyTorch names but does not
implement (Intel Gaudi's ``hpu``). Once installed, PyTorch 2.5 and later import the extension on ``import torch``
through its entry point in the group ``torch.backends`` (unless ``TORCH_DEVICE_BACKEND_AUTOLOAD=0``), and the torch
backend then opens the device like any other. Before that, a spec such as ``npu`` names a device this machine lacks,
and the reason says which package provides it.

Not listed, on purpose: ``xla`` (torch_xla's lazy tensors need their own backend: steps, recompilation and host
fallback checks), ``mtia`` and ``maia`` (no public extension), FuriosaAI (no public, documented PyTorch device name).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from typing import Any, Mapping

#: the environment variable that turns PyTorch's loading of installed device extensions off ("0")
AUTOLOAD_VARIABLE = "TORCH_DEVICE_BACKEND_AUTOLOAD"
#: the first PyTorch that loads installed device extensions by their ``torch.backends`` entry point
AUTOLOAD_SINCE = (2, 5)


@dataclass(frozen=True)
class TorchExtension:
    #: the PyTorch device type it adds ("npu"); specs are ``<device>`` and ``<device>:N``
    device: str
    #: whose accelerators, for messages: "Huawei Ascend NPUs"
    hardware: str
    #: the Python module to import ("torch_npu")
    module: str
    #: how to get it, one clause: "pip install torch-npu; it needs Huawei's CANN toolkit"
    install: str
    #: whether it takes PyTorch's PrivateUse1 slot (one per process) rather than a device type PyTorch names itself
    privateuse1: bool


EXTENSIONS: dict[str, TorchExtension] = {
    extension.device: extension
    for extension in (
        TorchExtension("hpu", "Intel Gaudi accelerators", "habana_frameworks.torch",
                       "the PyTorch packages of the Intel Gaudi software suite", privateuse1=False),
        TorchExtension("npu", "Huawei Ascend NPUs", "torch_npu",
                       "pip install torch-npu; it needs Huawei's CANN toolkit", privateuse1=True),
        TorchExtension("rbln", "Rebellions NPUs", "torch_rbln",
                       "pip install torch-rbln; its runtime rebel-compiler comes from Rebellions' own package index",
                       privateuse1=True),
    )
}

SPEC = re.compile(rf"^({'|'.join(EXTENSIONS)})(:\d+)?$")


def is_installed(extension: TorchExtension) -> bool:
    """Whether the extension's top-level package can be imported here (found without importing it)."""
    top = extension.module.partition(".")[0]
    return top in sys.modules or importlib.util.find_spec(top) is not None


def missing_reason(extension: TorchExtension, *, installed: bool, torch_version: str, environ: Mapping[str, str],
                   privateuse1_name: str | None) -> str:
    """Why PyTorch has no ``extension.device`` here, and what makes it appear: the extension is not installed, or it
    is but was not loaded (autoload off or too old a PyTorch, another extension holding PrivateUse1, a version of it
    without the entry point)."""
    autoload_off = environ.get(AUTOLOAD_VARIABLE, "1") != "1"
    too_old = _version(torch_version) < AUTOLOAD_SINCE
    import_it = f"import {extension.module} in a conftest.py"
    if not installed:
        what = (f"{extension.device} is the PyTorch device of {extension.hardware}, added by the extension "
                f"{extension.module} ({extension.install}), which is not installed here")
        if too_old:
            return (f"{what}; this PyTorch ({torch_version}) predates extension autoload (2.5): install it and "
                    f"{import_it}")
        if autoload_off:
            return (f"{what}; {AUTOLOAD_VARIABLE}=0 is set, which stops PyTorch loading installed extensions: install "
                    f"it and unset that, or {import_it}")
        return (f"{what}; installing it is enough: PyTorch loads installed device extensions itself, by their "
                "torch.backends entry point")
    what = f"{extension.module} is installed but has not registered {extension.device} with PyTorch"
    if autoload_off:
        return f"{what}: {AUTOLOAD_VARIABLE}=0 stops PyTorch loading installed extensions; unset it or {import_it}"
    if too_old:
        return f"{what}: this PyTorch ({torch_version}) predates extension autoload (2.5); {import_it}"
    if extension.privateuse1 and privateuse1_name is not None and privateuse1_name != extension.device:
        return (f"{what}: PyTorch's PrivateUse1 device, one per process, is already {privateuse1_name!r} (another "
                "extension's)")
    return f"{what}: this version of it has no torch.backends entry point for PyTorch to load it by; {import_it}"


def why_missing(extension: TorchExtension, torch: Any, environ: Mapping[str, str]) -> str:
    """:func:`missing_reason` with the facts of this process and its ``torch``."""
    name = torch._C._get_privateuse1_backend_name()
    return missing_reason(extension, installed=is_installed(extension), torch_version=torch.__version__,
                          environ=environ, privateuse1_name=None if name == "privateuseone" else name)


def _version(text: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
