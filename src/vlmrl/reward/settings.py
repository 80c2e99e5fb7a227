"""The reward's settings: one frozen, validated object, built once from `reward_kwargs`.

`RewardConfig.reward_kwargs()` (vlmrl.train.config) is what both training backends hand the reward;
`RewardSettings.from_kwargs(**kwargs)` turns it into this object. Each key is declared once, in
`vlmrl.reward.knobs`; unknown keys are errors, as in the experiment config. The verifier's url/model fall back to `$REWARD_MODEL_URL` / `$REWARD_MODEL_NAME`,
read when the settings are built, never per call.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from vlmrl.errors import UserError
from vlmrl.reward import verifier as vf
from vlmrl.reward.knobs import KNOB, KNOBS, default

#: Every key `from_kwargs` accepts, with what it means (declared in `vlmrl.reward.knobs`).
KEYS = {k.key: k.doc for k in KNOBS}


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _value(kwargs: dict[str, Any], key: str) -> Any:
    """A setting from `kwargs` as its knob declares it: cast, bounds checked, default when unset."""
    knob = KNOB[key]
    value = kwargs.get(key)
    if value is None or (knob.type is str and value == ""):
        value = os.environ.get(knob.env) or None if knob.env else None
        return knob.default if value is None else value
    try:
        out = knob.type(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"reward setting {key}={value!r} is not a {knob.type.__name__}") from exc
    if knob.type is not str and not (
        (knob.ge is None or out >= knob.ge)
        and (knob.gt is None or out > knob.gt)
        and (knob.le is None or out <= knob.le)
    ):
        raise UserError(f"reward setting {key}={value!r} must be {knob.bounds()}")
    return out


@dataclass(frozen=True)
class RewardSettings:
    """Scores and bounds of one reward."""

    correct_score: float = default("correct_score")
    incorrect_score: float = default("incorrect_score")
    format_score: float = default("format_score")
    rule_timeout_s: float = default("rule_timeout_s")
    rule_workers: int = default("rule_workers")  # 0 = min(4, cores)
    verifier: vf.VerifierSettings | None = None

    @property
    def workers(self) -> int:
        return self.rule_workers or _default_workers()

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> RewardSettings:
        """Validated settings; an unknown key or a bad value is a `UserError` naming the key."""
        unknown = sorted(set(kwargs) - set(KEYS))
        if unknown:
            raise UserError(
                f"unknown reward setting(s) {', '.join(unknown)}; the reward accepts: {', '.join(KEYS)}"
            )
        url, model = _value(kwargs, "verifier_url"), _value(kwargs, "verifier_model")
        verifier = None
        if url and model:
            verifier = vf.VerifierSettings(
                url=str(url),
                model=str(model),
                timeout_s=_value(kwargs, "verifier_timeout_s"),
                max_retries=_value(kwargs, "verifier_max_retries"),
                concurrency=_value(kwargs, "verifier_concurrency"),
                prompt_template=_value(kwargs, "verifier_prompt_template") or vf.XVERIFY_PROMPT,
                api_key=_value(kwargs, "verifier_api_key"),
            )
        elif url and not model:
            raise UserError(
                f"verifier url {url!r} is set but no model name: set reward.verifier.model "
                "(or $REWARD_MODEL_NAME) to the verifier's --served-model-name"
            )
        return cls(
            correct_score=_value(kwargs, "correct_score"),
            incorrect_score=_value(kwargs, "incorrect_score"),
            format_score=_value(kwargs, "format_score"),
            rule_timeout_s=_value(kwargs, "rule_timeout_s"),
            rule_workers=_value(kwargs, "rule_workers"),
            verifier=verifier,
        )


@functools.lru_cache(maxsize=64)
def _cached(items: tuple[tuple[str, Any], ...]) -> RewardSettings:
    return RewardSettings.from_kwargs(**dict(items))


def settings_from_kwargs(kwargs: dict[str, Any]) -> RewardSettings:
    """`RewardSettings.from_kwargs`, built once per distinct set of keyword arguments."""
    try:
        return _cached(tuple(sorted(kwargs.items())))
    except TypeError:  # an unhashable value: build it uncached (validation still applies)
        return RewardSettings.from_kwargs(**kwargs)
