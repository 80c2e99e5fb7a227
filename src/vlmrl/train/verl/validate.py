"""Validate veRL overrides on CPU before launch: compose with veRL's own Hydra config and check it.

Runs what `main_ppo` runs first (compose `ppo_trainer` + `validate_config`), and checks that every
key we emit lands where veRL 0.9.1 reads it with the value we meant, so no key is silently ignored.
"""

from __future__ import annotations

import math
import os
from typing import Any

from vlmrl.train.config import ConfigError
from vlmrl.train.verl.overrides import Override, check_raw_overrides, is_deliberate_addition


def verl_config_dir() -> str:
    """`verl/trainer/config` of the installed veRL."""
    try:
        import verl.trainer
    except ImportError as exc:
        raise ConfigError(
            f"veRL is not installed ({exc}); install it with `pip install -c constraints.txt -e '.[verl]'`"
        ) from exc
    return os.path.join(os.path.dirname(os.path.abspath(verl.trainer.__file__)), "config")


def compose(hydra_args: list[str]):
    """veRL's `ppo_trainer` config with `hydra_args` applied, as `main_ppo` would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=verl_config_dir(), version_base=None):
            return hydra_compose(config_name="ppo_trainer", overrides=list(hydra_args))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"veRL 0.9.1 rejected the overrides: {exc}") from None


def _same(actual: Any, expected: Any) -> bool:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(actual, (DictConfig, ListConfig)):
        actual = OmegaConf.to_container(actual, resolve=True)
    if isinstance(expected, tuple):
        expected = list(expected)
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return math.isclose(float(actual), expected, rel_tol=1e-12, abs_tol=0.0)
    return actual == expected and type(actual) is type(expected)


def check_landed(cfg, overrides: list[Override]) -> None:
    """Every override we emit is a key veRL defines (or a deliberate `+` addition) holding our value."""
    from omegaconf import OmegaConf

    problems = []
    for o in overrides:
        if o.plus and not is_deliberate_addition(o.key):
            problems.append(f"{o.key}: '+' addition outside the keys veRL 0.9.1 reads with .get()")
            continue
        sentinel = object()
        actual = OmegaConf.select(cfg, o.key, default=sentinel, throw_on_missing=False)
        if actual is sentinel:
            problems.append(f"{o.key}: not in the composed veRL config")
        elif not _same(actual, o.value):
            problems.append(f"{o.key}: composed to {actual!r}, expected {o.value!r}")
    if problems:
        raise ConfigError(
            "veRL overrides did not land where veRL 0.9.1 reads them:\n  " + "\n  ".join(problems)
        )


def validate(hydra_args: list[str], overrides: list[Override] | None = None, extra: list[str] | None = None):
    """Compose and validate; returns the composed veRL config (a DictConfig).

    `overrides` are our structured ones (checked value by value), `extra` raw user overrides (checked for
    refused keys; Hydra itself rejects non-`+` keys that do not exist).
    """
    import contextlib
    import io
    import warnings

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    if extra:
        check_raw_overrides(extra)
    cfg = compose(hydra_args)
    if overrides is not None:
        check_landed(cfg, overrides)
    # validate_config prints notices and warns about the critic; keep its output off our console.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
        except (AssertionError, ValueError, TypeError) as exc:
            raise ConfigError(f"veRL 0.9.1's validate_config refused the config: {exc}") from None
    return cfg


def to_yaml(cfg) -> str:
    """The composed veRL config as YAML with every `${...}` interpolation resolved against veRL's own
    values, so what is printed is what veRL runs (`???` marks a value veRL itself leaves unset)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def resolved_overrides(cfg, overrides: list[Override]) -> list[str]:
    """Each of `overrides` as a Hydra override (`key=value`, `+key=value`) holding the value veRL
    resolved for it in the composed `cfg`: lines that can be passed to `main_ppo` as they are."""
    from omegaconf import OmegaConf

    out = []
    for o in overrides:
        value = OmegaConf.select(cfg, o.key)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        out.append(Override(o.key, value, o.plus).render())
    return out
