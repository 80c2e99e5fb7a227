"""Registry of dataset sources: each is one small module turning published rows into `Example`s.

`load_examples(name, path=None, split=None, **options)` reads a hub id via `datasets` or a local
parquet/jsonl/json/csv file or directory. Add a source = add a module and list it in `_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vlmrl.data.example import Example
from vlmrl.errors import UserError


@dataclass(frozen=True)
class SourceInfo:
    """What a source is: its registry name, hub id, default split, whether rows carry images."""

    name: str
    hub_id: str
    default_split: str
    multimodal: bool
    description: str
    load: Callable[..., Iterator[Example]]


# registry name -> module under vlmrl.data.sources
_MODULES = {
    "skywork_or1_math": "skywork_or1_math",
    "mmk12": "mmk12",
    "geometry3k": "geometry3k",
    "aime24": "aime24",
    "math500": "math500",
    "gpqa_diamond": "gpqa_diamond",
    "generic": "generic",
}


def get_source(name: str) -> SourceInfo:
    if name not in _MODULES:
        raise UserError(f"unknown data source {name!r}; registered sources: {', '.join(sorted(_MODULES))}")
    module = importlib.import_module(f"vlmrl.data.sources.{_MODULES[name]}")
    return module.SOURCE


def source_names() -> list[str]:
    return list(_MODULES)


def load_examples(
    name: str, path: str | None = None, split: str | None = None, **options: Any
) -> Iterator[Example]:
    """Yield canonical examples of source `name` from `path` (local) or its hub id when `path` is None.

    `split` defaults to the source's own (e.g. `math` for Skywork-OR1, `test` for MATH-500).
    `options` are source-specific (e.g. `seed` for gpqa_diamond, column mapping for generic);
    an unknown option is an error.
    """
    info = get_source(name)
    return info.load(path=path, split=split or info.default_split, **options)
