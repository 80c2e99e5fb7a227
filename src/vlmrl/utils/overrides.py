"""Dotted `key=value` command-line overrides, shared by experiment configs and data recipes.

Values parse as YAML (`rollout.n=8` is an int, `logger=[console,wandb]` a list).
"""

from __future__ import annotations

from typing import Any

import yaml

from vlmrl.errors import UserError


class OverrideError(UserError, ValueError):
    """A malformed override; the message quotes it and says what form is expected."""


def parse_override(text: str, example: str = "rollout.n=8") -> tuple[list[str], Any]:
    """Split 'a.b.c=value' into (['a', 'b', 'c'], value) with the value parsed as YAML."""
    if "=" not in text:
        raise OverrideError(f"override {text!r}: expected key=value with a dotted key, e.g. {example}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise OverrideError(f"override {text!r}: empty key segment in {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError as exc:
        raise OverrideError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return key.split("."), value


def set_dotted(tree: dict[str, Any], path: list[str], value: Any, origin: str) -> None:
    """Set tree[path[0]][path[1]]... = value, creating sections; `origin` names the override in errors."""
    node = tree
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise OverrideError(f"{origin}: key {'.'.join(path[: i + 1])!r} is a value, not a section")
        node = child
    node[path[-1]] = value


def apply_overrides(
    tree: dict[str, Any], overrides: list[str] | tuple[str, ...], example: str
) -> dict[str, str]:
    """Apply overrides in order; returns {dotted key: override text} for error attribution."""
    applied: dict[str, str] = {}
    for text in overrides:
        keys, value = parse_override(text, example)
        set_dotted(tree, keys, value, f"override {text!r}")
        applied[".".join(keys)] = text
    return applied
