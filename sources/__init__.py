"""Every candidate source, found by name: adding a model is adding a module here that lists its
source classes in `SOURCES` (the contract: sources/base.py). A module whose name starts with "_" is a
source's helper (its torch code, say), imported only when that source is fit or loaded.

REGISTRY keeps the modules' order (sorted by module name), which is the reranker's feature order."""
from __future__ import annotations

import importlib
import pkgutil

REGISTRY: dict = {}
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name not in ("base", "__main__") and not _info.name.startswith("_"):
        for _source in getattr(importlib.import_module(f"{__name__}.{_info.name}"), "SOURCES", ()):
            REGISTRY[_source.name] = _source
