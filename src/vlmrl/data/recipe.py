"""Data recipes: which sources to read and which parquet files to write (YAML, validated).

Loaded from YAML with dotted `key=value` overrides (e.g. `sources.mmk12.path=/data/mmk12`);
unknown keys and wrong types are errors naming the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vlmrl.data.images import PATCH_FACTOR, QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, ImageOptions
from vlmrl.data.prompt import DEFAULT_INSTRUCTION
from vlmrl.errors import UserError
from vlmrl.utils.io import read_yaml_mapping
from vlmrl.utils.overrides import apply_overrides


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Strict):
    source: str = Field(description="Registry name (see `vlmrl data sources`), e.g. mmk12, skywork_or1_math.")
    path: str | None = Field(None, description="Local file or directory; None reads the hub id.")
    split: str | None = Field(None, description="Split to read; None = the source's default.")
    options: dict[str, Any] = Field(default_factory=dict, description="Source-specific options.")
    limit: int | None = Field(None, ge=1, description="Keep at most this many rows (seeded random choice).")


class ImageSpec(_Strict):
    min_pixels: int = Field(QWEN_MIN_PIXELS, ge=1)
    max_pixels: int = Field(QWEN_MAX_PIXELS, ge=1)
    min_side: int = Field(PATCH_FACTOR, ge=1)
    jpeg_quality: int = Field(95, ge=1, le=100)

    def options(self) -> ImageOptions:
        if self.min_pixels > self.max_pixels:
            raise UserError("images.min_pixels must not exceed images.max_pixels")
        return ImageOptions(self.min_pixels, self.max_pixels, self.min_side, self.jpeg_quality)


class DecontaminationSpec(_Strict):
    against: list[str] = Field(default_factory=list, description="Source names (evaluation sets) to check.")
    ngram: int = Field(8, ge=1, description="Word n-gram length for overlap.")
    threshold: float = Field(0.5, gt=0, le=1, description="Share of a question's n-grams found to drop it.")


class OutputSpec(_Strict):
    path: str
    sources: list[str] = Field(min_length=1)
    mixed_policy: Literal["blank", "native"] = Field(
        "blank", description="Text rows in a file with images: blank image (stock veRL) or none (native)."
    )
    mix_ratio: dict[str, float] | None = Field(
        None, description="Share of rows per source after filtering, e.g. {mmk12: 0.5, skywork: 0.5}."
    )
    shuffle: bool = True
    dedup: bool = True
    decontaminate: bool = True
    split: str | None = Field(
        None,
        description="Label written as extra_info.split (e.g. `test` for evaluation files); "
        "None = the split the source was read from (AIME 2024's only hub split is `train`).",
    )


class Recipe(_Strict):
    instruction: str | None = Field(
        DEFAULT_INSTRUCTION, description="Appended to every question; '' for none. Default: the seed's."
    )
    seed: int = 0
    workers: int = Field(0, ge=0, description="Image worker processes; 0 = all cores.")
    chunk_rows: int = Field(256, ge=1, description="Rows per parquet row group and per image batch.")
    images: ImageSpec = Field(default_factory=ImageSpec)
    blank_image_size: int = Field(PATCH_FACTOR, ge=PATCH_FACTOR)
    tokenizer: str | None = Field(
        None, description="Tokenizer (model dir or hub id) for the prompt length check."
    )
    max_prompt_length: int | None = Field(None, ge=1)
    decontamination: DecontaminationSpec = Field(default_factory=DecontaminationSpec)
    rejects: str | None = Field(
        None, description="Rejects jsonl; default: rejects.jsonl beside the first output."
    )
    strict: bool = Field(
        False,
        description="Abort on the first row with a problem (missing field, empty answer, bad image) "
        "instead of rejecting it and going on.",
    )
    sources: dict[str, SourceSpec]
    outputs: dict[str, OutputSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_exist(self) -> Recipe:
        for out_name, out in self.outputs.items():
            for s in out.sources:
                if s not in self.sources:
                    raise ValueError(f"outputs.{out_name}.sources: {s!r} is not under `sources`")
            for s in out.mix_ratio or {}:
                if s not in out.sources:
                    raise ValueError(f"outputs.{out_name}.mix_ratio: {s!r} is not one of its sources")
        for s in self.decontamination.against:
            if s not in self.sources:
                raise ValueError(f"decontamination.against: {s!r} is not under `sources`")
        if self.max_prompt_length and not self.tokenizer:
            raise ValueError("max_prompt_length needs `tokenizer` (a model directory or hub id)")
        return self

    def rejects_path(self) -> Path:
        if self.rejects:
            return Path(self.rejects)
        first = next(iter(self.outputs.values()))
        return Path(first.path).parent / "rejects.jsonl"


def load_recipe(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    source_paths: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
) -> Recipe:
    """A validated recipe from a YAML file (or a dict), then `key=value` overrides, then source paths."""
    where = str(path) if path is not None else "recipe"
    if data is None:
        if path is None:
            raise UserError("load_recipe needs a path or data")
        data = read_yaml_mapping(path, "recipe", " (presets live in configs/data/)")
    if not isinstance(data, dict):
        raise UserError(f"{where}: a recipe is a mapping with `sources` and `outputs`")
    apply_overrides(data, list(overrides), example="sources.mmk12.path=/data/mmk12")
    for name, src_path in (source_paths or {}).items():
        if name not in (data.get("sources") or {}):
            known = ", ".join(data.get("sources") or {}) or "none"
            raise UserError(f"--data {name}=...: no source {name!r} in {where} (sources: {known})")
        data["sources"][name]["path"] = src_path
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise UserError(f"{where}: {problems}") from exc


def _problem(err: Any) -> str:
    """One validation error as `dotted.key: what to do`."""
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "(top)"
    if err["type"] == "extra_forbidden" and len(loc) == 3 and loc[0] == "sources":
        name, option = loc[1], loc[2]
        return (
            f"{key}: {option!r} is not a key of a source entry ({', '.join(SourceSpec.model_fields)}); "
            f"source-specific settings, such as the `generic` source's column keys, go under `options:` "
            f"-- move it to sources.{name}.options.{option}"
        )
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    return f"{key}: {err['msg']}"
