"""Tiny offline vision-language models, built locally with no network: one module per model family.

They serve users (the demo, `vlmrl train --smoke`, CPU trials of a config) as well as the tests. Each
family module offers `build_tiny_vlm(path=None, seed=0, force=False, size="tiny")`, `describe(path)`,
`default_path(seed, size)` and `SIZES`; `FAMILIES` names the modules and `family_module` loads one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: model family (the `model_type` in a Hugging Face config.json) -> module building its tiny model
FAMILIES: dict[str, str] = {
    "qwen2_5_vl": "vlmrl.tiny.qwen2_5_vl",
}
DEFAULT_FAMILY = "qwen2_5_vl"


def family_module(family: str = DEFAULT_FAMILY) -> ModuleType:
    """The module that builds the tiny model of `family`; a clear error for an unknown family."""
    if family not in FAMILIES:
        raise ValueError(f"no tiny model for family {family!r}; choose one of {sorted(FAMILIES)}")
    return importlib.import_module(FAMILIES[family])
