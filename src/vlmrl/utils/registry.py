"""Registries made of files: every public module of a package that declares one named object.

Adding a data source or a benchmark is adding one file; nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def module_names(package: str) -> list[str]:
    """The public (not `_`-prefixed) modules of `package`, sorted by name."""
    pkg = importlib.import_module(package)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def load_declared(package: str, attribute: str) -> dict[str, Any]:
    """{module name: module.<attribute>} for every public module of `package`."""
    out = {}
    for name in module_names(package):
        module = importlib.import_module(f"{package}.{name}")
        if not hasattr(module, attribute):
            raise TypeError(f"{package}.{name} declares no {attribute}; every module there must")
        out[name] = getattr(module, attribute)
    return out
