"""Tiny offline vision-language models, built locally with no network: one module per model family;
and the one table of model families vlmrl supports (`SUPPORTED`), which every stage reads.

The tiny models serve users (the demo, `vlmrl train --smoke`, CPU trials of a config) as well as the
tests. Each family module offers `build_tiny_vlm(path=None, seed=0, force=False, size="tiny")`,
`describe(path)`, `default_path(seed, size)`, `SIZES` and `DEMO_OVERRIDES` (the demo's GRPO settings
for that family over `configs/train/demo.yaml`); `FAMILIES` names the modules and
`family_module` loads one.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class Family:
    """A model family (the `model_type` of a Hugging Face config.json) and what vlmrl knows of it.

    The processor numbers are the published checkpoints' `preprocessor_config.json`; they are used
    only when the model's own processor is not on this machine (a hub id not downloaded yet): a local
    model's processor is always read instead.
    """

    model_type: str
    label: str
    #: A hub id or directory name of this family (`Qwen/Qwen3-VL-8B-Instruct`), case-insensitive.
    name_pattern: str
    patch_size: int
    merge_size: int
    min_pixels: int
    max_pixels: int
    #: Module building its tiny model; None: smoke runs and the demo use `tiny_family`'s.
    tiny: str | None = None
    #: Family of the tiny model that stands in for this one (a dense model for a mixture of experts).
    tiny_family: str | None = None
    #: Trained end to end here (veRL and TRL on the tiny model); False: compose/validate/budget only.
    exercised: bool = True


SUPPORTED: dict[str, Family] = {
    f.model_type: f
    for f in (
        Family(
            "qwen2_5_vl",
            "Qwen2.5-VL",
            r"qwen2\.5-vl",
            patch_size=14,
            merge_size=2,
            min_pixels=56 * 56,
            max_pixels=28 * 28 * 16384,
            tiny="vlmrl.tiny.qwen2_5_vl",
        ),
        Family(
            "qwen2_vl",
            "Qwen2-VL",
            r"qwen2-vl",
            patch_size=14,
            merge_size=2,
            min_pixels=56 * 56,
            max_pixels=28 * 28 * 16384,
            tiny_family="qwen2_5_vl",
            exercised=False,
        ),
        Family(
            "qwen3_vl",
            "Qwen3-VL",
            r"qwen3-vl-(?!.*-a\d+b)",
            patch_size=16,
            merge_size=2,
            min_pixels=65536,  # Qwen3-VL's size.shortest_edge
            max_pixels=16777216,  # size.longest_edge
            tiny="vlmrl.tiny.qwen3_vl",
        ),
        Family(
            "qwen3_vl_moe",
            "Qwen3-VL-MoE",
            r"qwen3-vl-.*-a\d+b",
            patch_size=16,
            merge_size=2,
            min_pixels=65536,
            max_pixels=16777216,
            tiny_family="qwen3_vl",
            exercised=False,
        ),
    )
}

#: model family -> module building its tiny model
FAMILIES: dict[str, str] = {f.model_type: f.tiny for f in SUPPORTED.values() if f.tiny}
DEFAULT_FAMILY = "qwen2_5_vl"


def family_module(family: str = DEFAULT_FAMILY) -> ModuleType:
    """The module that builds the tiny model of `family`; a clear error for an unknown family."""
    if family not in FAMILIES:
        raise ValueError(f"no tiny model for family {family!r}; choose one of {sorted(FAMILIES)}")
    return importlib.import_module(FAMILIES[family])


def supported_text() -> str:
    """`qwen2_5_vl (Qwen2.5-VL), ...`: the supported families, for messages."""
    return ", ".join(f"{f.model_type} ({f.label})" for f in SUPPORTED.values())


def local_model_type(path: str | os.PathLike[str]) -> str | None:
    """`model_type` of a local model directory's config.json; None when there is none to read."""
    config = Path(os.path.expanduser(str(path))) / "config.json"
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, str) else None


def family_from_name(name: str) -> str | None:
    """The supported family a hub id or directory name names (`Qwen/Qwen3-VL-8B-Instruct` -> qwen3_vl)."""
    for family in SUPPORTED.values():
        if re.search(family.name_pattern, str(name), re.IGNORECASE):
            return family.model_type
    return None


def model_family(path: str | os.PathLike[str]) -> str | None:
    """A model's family: its config.json's `model_type` when it is a local directory, else its name's.

    May return a model type vlmrl does not support (a local model of another family); check `SUPPORTED`.
    """
    return local_model_type(path) or family_from_name(str(path))


def tiny_family_for(model: str | os.PathLike[str] | None) -> str:
    """The family of the tiny model that stands in for `model` (smoke runs): its own when it has one,
    its stand-in's otherwise; an error naming the supported families for anything else."""
    if model is None:
        return DEFAULT_FAMILY
    family = model_family(model)
    if family is None:
        return DEFAULT_FAMILY  # a name that says nothing (a hub id of an unknown form): the default
    if family not in SUPPORTED:
        raise ValueError(
            f"{model}: model_type {family!r} is not a family vlmrl supports; supported: {supported_text()}"
        )
    f = SUPPORTED[family]
    return family if f.tiny else (f.tiny_family or DEFAULT_FAMILY)
