"""Every candidate source, found by name: adding a model is adding a module here that lists its
source classes in `SOURCES` (the contract: sources/base.py) and naming the module in `MODULES`.

`MODULES` is the registry's order, and the registry's order is the reranker's feature order and the
candidates' merge order, so a ranker trained on one order is not the same ranker on another: append
a new module, never re-sort. Modules not named there are the sources' shared pieces (base, sparse)
or a source's helper starting with "_" (its torch code, say), imported only when that source is fit
or loaded; tests/test_sources.py fails on a module that is neither."""
from __future__ import annotations

import importlib

MODULES = ("als", "popularity", "title_popularity", "item_knn", "artist_knn", "sequence", "title_knn")
SHARED = ("base", "sparse", "__main__")

REGISTRY: dict = {}
for _module in MODULES:
    for _source in importlib.import_module(f"{__name__}.{_module}").SOURCES:
        REGISTRY[_source.name] = _source
