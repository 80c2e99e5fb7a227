"""Registry of dataset sources: each is one small module here turning published rows into `Example`s.

`load_examples(name, path=None, split=None, **options)` reads a hub id via `datasets` or a local
parquet/jsonl/json/csv file or directory. Add a source = add a module `NAME.py` declaring
`SOURCE = SourceInfo("NAME", ...)` (and its test); modules starting with `_` are helpers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vlmrl.data.example import Example
from vlmrl.errors import UserError
from vlmrl.utils.registry import module_names


@dataclass(frozen=True)
class SourceInfo:
    """What a source is: its registry name, hub id, default split, whether rows carry images."""

    name: str
    hub_id: str
    default_split: str
    multimodal: bool
    description: str
    load: Callable[..., Iterator[Example]]


def source_names() -> list[str]:
    """Registered source names: the public modules of this package."""
    return module_names(__name__)


def get_source(name: str) -> SourceInfo:
    names = source_names()
    if name not in names:
        raise UserError(f"unknown data source {name!r}; registered sources: {', '.join(names)}")
    info = importlib.import_module(f"{__name__}.{name}").SOURCE
    if info.name != name:
        raise TypeError(f"{__name__}.{name} declares SOURCE named {info.name!r}; name it after its file")
    return info


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
