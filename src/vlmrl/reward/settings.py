"""The reward's settings: one frozen, validated object, built once from `reward_kwargs`.

`RewardConfig.reward_kwargs()` (vlmrl.train.config) is what both training backends hand the reward;
`RewardSettings.from_kwargs(**kwargs)` turns it into this object. Unknown keys are errors, as in the
experiment config. The verifier's url/model fall back to `$REWARD_MODEL_URL` / `$REWARD_MODEL_NAME`,
read when the settings are built, never per call.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from vlmrl.errors import UserError
from vlmrl.reward import verifier as vf

#: Every key `from_kwargs` accepts, with what it means.
KEYS = {
    "correct_score": "score of a well-formatted correct answer (default 1.0)",
    "incorrect_score": "score of a well-formatted wrong answer (default -1.0)",
    "format_score": "score of a response that fails the format gate (default -1.0)",
    "rule_timeout_s": "hard bound on one math-verify check, in seconds (default 5.0)",
    "rule_workers": "math-verify worker processes per process (default min(4, cores))",
    "verifier_url": "OpenAI-compatible base URL of the verifier (default $REWARD_MODEL_URL)",
    "verifier_model": "served verifier model name (default $REWARD_MODEL_NAME)",
    "verifier_timeout_s": "per-request verifier timeout (default 30)",
    "verifier_max_retries": "retries after a failed verifier request (default 2)",
    "verifier_concurrency": "verifier requests in flight at once (default 64)",
    "verifier_prompt_template": "judge prompt with {question}, {output}, {answer} (default xVerify's)",
    "verifier_api_key": "bearer token for the verifier (default $REWARD_MODEL_API_KEY)",
}


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class RewardSettings:
    """Scores and bounds of one reward."""

    correct_score: float = 1.0
    incorrect_score: float = -1.0
    format_score: float = -1.0
    rule_timeout_s: float = 5.0
    rule_workers: int = 0  # 0 = min(4, cores)
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

        def num(name: str, default: float, cast: type = float, low: float | None = None) -> Any:
            value = kwargs.get(name)
            if value is None:
                return default
            try:
                out = cast(value)
            except (TypeError, ValueError) as exc:
                raise UserError(f"reward setting {name}={value!r} is not a {cast.__name__}") from exc
            if low is not None and out < low:
                raise UserError(f"reward setting {name}={value!r} must be >= {low}")
            return out

        url = kwargs.get("verifier_url") or os.environ.get("REWARD_MODEL_URL") or None
        model = kwargs.get("verifier_model") or os.environ.get("REWARD_MODEL_NAME") or None
        verifier = None
        if url and model:
            verifier = vf.VerifierSettings(
                url=str(url),
                model=str(model),
                timeout_s=max(0.01, num("verifier_timeout_s", 30.0)),
                max_retries=num("verifier_max_retries", 2, int, 0),
                concurrency=num("verifier_concurrency", 64, int, 1),
                prompt_template=str(kwargs.get("verifier_prompt_template") or vf.XVERIFY_PROMPT),
                api_key=kwargs.get("verifier_api_key") or os.environ.get("REWARD_MODEL_API_KEY") or None,
            )
        elif url and not model:
            raise UserError(
                f"verifier url {url!r} is set but no model name: set reward.verifier.model "
                "(or $REWARD_MODEL_NAME) to the verifier's --served-model-name"
            )
        return cls(
            correct_score=num("correct_score", 1.0),
            incorrect_score=num("incorrect_score", -1.0),
            format_score=num("format_score", -1.0),
            rule_timeout_s=num("rule_timeout_s", 5.0, float, 0.1),
            rule_workers=num("rule_workers", 0, int, 0),
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
