"""One module per vendor, each exposing `KIT`, a `ContractKit`; found here by listing the folder."""

from __future__ import annotations

import importlib
import pkgutil

from tests.contract.kit import ContractKit


def all_kits() -> list[ContractKit]:
    kits = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        kit = getattr(module, "KIT", None)
        if isinstance(kit, ContractKit):
            kits.append(kit)
    return kits
