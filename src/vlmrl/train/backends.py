"""What each training backend supports, in one table, checked when an experiment config is loaded.

A knob a backend lacks is either refused (an error naming the key and what to do instead) or a
note the run summary carries; nothing is dropped silently. Engine mappings read this, not their own ifs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Knobs read an `ExperimentConfig` (vlmrl.train.config, which imports this table to check it).
ExperimentConfig = Any

OK, NOTE, REFUSE = "ok", "note", "refuse"

# veRL's loss aggregation -> TRL's loss_type with the same normalisation.
TRL_LOSS_TYPES = {
    "token-mean": "dapo",  # sum over all tokens of the batch / number of tokens
    "seq-mean-token-mean": "grpo",  # per-sequence token mean, then mean over sequences
    "seq-mean-token-sum-norm": "dr_grpo",  # token sum / a constant (max_completion_length)
}


def _is_default(cfg: ExperimentConfig, key: str) -> bool:
    """Whether `cfg`'s value at dotted `key` is the schema's default."""
    *path, name = key.split(".")
    section = cfg
    for part in path:
        section = getattr(section, part)
    return getattr(section, name) == type(section).model_fields[name].default


@dataclass(frozen=True)
class Knob:
    """A setting some backend handles differently. `used(cfg)`: the config asks for it.

    verl/trl: (OK | NOTE | REFUSE, what to tell the user); the message follows `key=value: `.
    """

    key: str
    used: Callable[[ExperimentConfig], bool]
    verl: tuple[str, str] = (OK, "")
    trl: tuple[str, str] = (OK, "")


SUPPORT: tuple[Knob, ...] = (
    Knob(
        "rollout.n",
        lambda c: c.algorithm.adv_estimator == "grpo" and c.rollout.n < 2,
        verl=(REFUSE, "GRPO needs at least 2 responses per prompt to form a group"),
        trl=(REFUSE, "GRPO needs at least 2 responses per prompt to form a group"),
    ),
    Knob(
        "algorithm.adv_estimator",
        lambda c: c.algorithm.adv_estimator != "grpo",
        trl=(
            REFUSE,
            "the TRL backend trains GRPO only; set algorithm.adv_estimator=grpo or use backend=verl",
        ),
    ),
    Knob(
        "algorithm.loss_agg_mode",
        lambda c: c.algorithm.loss_agg_mode not in TRL_LOSS_TYPES,
        trl=(REFUSE, f"no TRL equivalent; use one of {', '.join(TRL_LOSS_TYPES)} with backend=trl"),
    ),
    Knob(
        "algorithm.use_kl_in_reward",
        lambda c: c.algorithm.use_kl_in_reward,
        trl=(REFUSE, "TRL has no KL-in-reward; use algorithm.use_kl_loss=true instead"),
    ),
    Knob(
        "algorithm.kl_loss_type",
        lambda c: c.algorithm.use_kl_loss and c.algorithm.kl_loss_type != "low_var_kl",
        trl=(NOTE, "TRL always uses the k3 (low_var_kl) estimator"),
    ),
    Knob(
        "algorithm.filter_groups.enable",
        lambda c: c.algorithm.filter_groups.enable,
        trl=(
            NOTE,
            "dynamic sampling is veRL-only; TRL keeps all groups (groups with equal scores get zero advantage)",
        ),
    ),
    Knob(
        "algorithm.clip_ratio_c",
        lambda c: not _is_default(c, "algorithm.clip_ratio_c"),
        trl=(NOTE, "TRL has no dual-clip; ignored"),
    ),
    Knob(
        "algorithm.use_dynamic_bsz",
        lambda c: c.algorithm.use_dynamic_bsz,
        trl=(NOTE, "TRL batches by sample count; ignored"),
    ),
    Knob(
        "rollout.engine",
        lambda c: c.rollout.engine == "sglang",
        trl=(NOTE, "sglang is veRL-only; TRL generates with transformers"),
    ),
    Knob(
        "rollout.engine",
        lambda c: c.rollout.engine not in ("vllm", "sglang"),
        verl=(
            REFUSE,
            "veRL 0.9.1 rolls out with 'vllm' or 'sglang' only ('hf' generation is for backend=trl)",
        ),
    ),
    Knob(
        "trainer.n_gpus_per_node",
        lambda c: c.trainer.n_gpus_per_node < 1,
        verl=(REFUSE, "must be at least 1 for backend=verl (veRL needs GPUs)"),
    ),
    Knob(
        "model.freeze_vision_tower",
        lambda c: c.model.freeze_vision_tower,
        verl=(
            REFUSE,
            "not available on veRL 0.9.1: its actor_rollout_ref.actor.freeze_vision_tower is never read, "
            "so the tower would still train; use backend=trl or leave it false",
        ),
    ),
    Knob(
        "reward.overlong.enable",
        lambda c: c.reward.overlong.enable and c.reward.manager != "dapo",
        verl=(REFUSE, "needs reward.manager=dapo; veRL's naive manager has no overlong buffer"),
        trl=(NOTE, "the overlong penalty comes with reward.manager=dapo; none is applied"),
    ),
)


def _value(cfg: ExperimentConfig, key: str) -> object:
    value: object = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def support(cfg: ExperimentConfig) -> tuple[list[str], list[str]]:
    """(refused, notes) for `cfg.backend`: one line `key=value: why` per knob the config uses."""
    refused, notes = [], []
    for knob in SUPPORT:
        status, why = getattr(knob, cfg.backend)
        if status == OK or not knob.used(cfg):
            continue
        value = _value(cfg, knob.key)
        line = f"{knob.key}={str(value).lower() if isinstance(value, bool) else value}: {why}"
        (refused if status == REFUSE else notes).append(line)
    return refused, notes
