"""Every reward setting, declared once: its keyword, type, default, bounds, meaning and config key.

`RewardSettings.from_kwargs` (vlmrl.reward.settings) validates against this table, the verifier's
settings take their defaults from it, and the experiment config's `reward:` section
(vlmrl.train.config) builds its fields and `reward_kwargs()` from it. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Knob:
    """One reward setting. `config` is its key under the experiment config's `reward:` section
    (None: a keyword argument only); `env` the variable read when it is unset."""

    key: str
    type: type
    default: Any
    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    config: str | None = None
    env: str | None = None

    def bounds(self) -> str:
        parts = [
            f">= {self.ge}" if self.ge is not None else "",
            f"> {self.gt}" if self.gt is not None else "",
        ]
        parts.append(f"<= {self.le}" if self.le is not None else "")
        return " and ".join(p for p in parts if p)


KNOBS: tuple[Knob, ...] = (
    Knob("correct_score", float, 1.0, "Score for a well-formatted, correct answer.", config="correct_score"),
    Knob(
        "incorrect_score", float, -1.0, "Score for a well-formatted, wrong answer.", config="incorrect_score"
    ),
    Knob(
        "format_score", float, -1.0, "Score for a response that fails the format gate.", config="format_score"
    ),
    Knob(
        "rule_timeout_s",
        float,
        5.0,
        "Hard bound on one rule check (math-verify runs in a killable worker), in seconds.",
        ge=0.1,
        le=600,
        config="rule_timeout_s",
    ),
    Knob("rule_workers", int, 0, "math-verify worker processes per process; 0 = min(4, cores).", ge=0),
    Knob(
        "verifier_timeout_s",
        float,
        30.0,
        "Per-request timeout of the verifier, in seconds.",
        gt=0,
        config="verifier.timeout_s",
    ),
    Knob(
        "verifier_max_retries",
        int,
        2,
        "Retries after a failed verifier request (with backoff).",
        ge=0,
        le=10,
        config="verifier.max_retries",
    ),
    Knob(
        "verifier_concurrency",
        int,
        64,
        "Verifier requests in flight at once per process.",
        ge=1,
        le=4096,
        config="verifier.concurrency",
    ),
    Knob(
        "verifier_url",
        str,
        None,
        "OpenAI-compatible base URL of the verifier model (e.g. http://host:8888/v1); None = rules only. "
        "Falls back to $REWARD_MODEL_URL.",
        config="verifier.url",
        env="REWARD_MODEL_URL",
    ),
    Knob(
        "verifier_model",
        str,
        None,
        "Served model name of the verifier; falls back to $REWARD_MODEL_NAME.",
        config="verifier.model",
        env="REWARD_MODEL_NAME",
    ),
    Knob(
        "verifier_prompt_template",
        str,
        None,
        "Judge prompt with {question}, {output}, {answer}; None = xVerify's.",
    ),
    Knob(
        "verifier_api_key",
        str,
        None,
        "Bearer token for the verifier; falls back to $REWARD_MODEL_API_KEY.",
        env="REWARD_MODEL_API_KEY",
    ),
)

KNOB: dict[str, Knob] = {k.key: k for k in KNOBS}


def default(key: str) -> Any:
    """The declared default of a reward setting."""
    return KNOB[key].default
