"""Experiment config -> veRL 0.9.1 Hydra overrides for `python -m verl.trainer.main_ppo`.

Every key here was read against the installed veRL 0.9.1 (config YAML and the code that reads it);
keys veRL accepts but silently ignores are refused with the key to use instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmrl.train.config import ConfigError, ExperimentConfig

#: The module veRL imports in every worker (`external_lib`) to fix 0.9.1 crashes on our stack.
PATCH_MODULE = "vlmrl.train.verl.patches"
#: The module veRL loads the reward function from, by name (`pkg://`, veRL's `load_module`): it
#: resolves wherever vlmrl is importable on each Ray node, never through this machine's install path.
REWARD_ENTRY_MODULE = "vlmrl.reward.verl_entry"
REWARD_FUNCTION_NAME = "compute_score"

#: `+key` additions we make on purpose: veRL 0.9.1 reads them with `.get()` although its YAML omits them.
DELIBERATE_ADDITIONS = (
    "reward.custom_reward_function.reward_kwargs.",  # merged into every compute_score call
    "reward.reward_kwargs.",  # the dapo manager's overlong_buffer_cfg and max_resp_len
    "data.mm_processor_kwargs.",  # min/max pixels for the processor
    # FSDPEngineConfig.mixed_precision (the engine's compute dtype): a dataclass field the YAML omits.
    "actor_rollout_ref.actor.fsdp_config.mixed_precision.",
    "actor_rollout_ref.ref.fsdp_config.mixed_precision.",
    "actor_rollout_ref.rollout.limit_images",  # vLLM limit_mm_per_prompt
    # CPU runs only (vlmrl.train.verl.cpu): fields of veRL's dataclasses that its YAML omits.
    "actor_rollout_ref.model.override_config.attn_implementation",  # HFModelConfig reads it, default flash-attn
    "actor_rollout_ref.rollout.enable_sleep_mode",  # RolloutConfig field, default true
    "ray_kwargs.ray_init.num_gpus",  # passed to ray.init as is
)

#: Keys veRL 0.9.1 accepts but never reads, with what to write instead.
REFUSED_KEYS: tuple[tuple[str, str], ...] = (
    ("custom_reward_function.", "reward.custom_reward_function.<same key> (vlmrl sets it from `reward.*`)"),
    ("reward_model.reward_manager", "reward.reward_manager.name (vlmrl: `reward.manager`)"),
    (
        "reward_model.overlong_buffer.",
        "+reward.reward_kwargs.overlong_buffer_cfg.<same key> and +reward.reward_kwargs.max_resp_len "
        "(vlmrl: `reward.overlong.*`)",
    ),
    ("reward_model.reward_kwargs.", "+reward.reward_kwargs.<same key>"),
    (
        "reward_model.",
        "reward.reward_model.<key> or reward.<key> (see verl/trainer/config/reward/reward.yaml)",
    ),
    ("sandbox_fusion.", "reward.sandbox_fusion.<same key>"),
    (
        "actor_rollout_ref.actor.grad_clip",
        "actor_rollout_ref.actor.optim.clip_grad (vlmrl: `algorithm.grad_clip`)",
    ),
    (
        "actor_rollout_ref.actor.fsdp_config.dtype",
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype (vlmrl: `model.dtype`); the "
        "FSDP engine reads only that, `dtype` is Megatron's",
    ),
    (
        "actor_rollout_ref.ref.fsdp_config.dtype",
        "+actor_rollout_ref.ref.fsdp_config.mixed_precision.param_dtype (vlmrl: `model.dtype`)",
    ),
    (
        "actor_rollout_ref.actor.freeze_vision_tower",
        "nothing: veRL 0.9.1 defines it but never reads it, so the tower would still train",
    ),
    (
        "algorithm.filter_groups.max_num_gen_batches",
        "algorithm.filter_groups.max_inflight_gen_batches (the V1 trainer ignores max_num_gen_batches)",
    ),
)

_SAFE_STRING = re.compile(r"^[A-Za-z0-9_./~@:-]+$")
_LOOKS_TYPED = re.compile(
    r"^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|true|false|null|none|nan|inf|[+-]inf)$", re.IGNORECASE
)


@dataclass(frozen=True)
class Override:
    """One Hydra override: `key=value`, or `+key=value` when veRL's YAML lacks the key (`plus`)."""

    key: str
    value: Any
    plus: bool = False

    def render(self) -> str:
        return f"{'+' if self.plus else ''}{self.key}={format_value(self.value)}"


def format_value(value: Any) -> str:
    """A Python value as Hydra override grammar; strings are quoted unless plainly safe."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    text = str(value)
    if _SAFE_STRING.match(text) and not _LOOKS_TYPED.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override_key(text: str) -> tuple[str, str]:
    """('+' | '++' | '~' | '', dotted key) of a raw Hydra override string."""
    head = text.split("=", 1)[0].strip()
    prefix = ""
    for p in ("++", "+", "~"):
        if head.startswith(p):
            prefix, head = p, head[len(p) :]
            break
    return prefix, head


def refused_replacement(key: str) -> str | None:
    """The key to use instead, when `key` is one veRL 0.9.1 accepts and silently ignores."""
    for prefix, replacement in REFUSED_KEYS:
        if key == prefix.rstrip(".") or key.startswith(prefix):
            return replacement
    return None


def check_raw_overrides(overrides: list[str], origin: str = "extra_overrides") -> None:
    """Refuse silently ignored keys and undeclared `+` additions; raise `ConfigError` listing each."""
    problems = []
    for text in overrides:
        if "=" not in text and not text.startswith("~"):
            problems.append(f"{origin}: {text!r} is not a Hydra override (expected key=value)")
            continue
        prefix, key = override_key(text)
        replacement = refused_replacement(key)
        if replacement is not None:
            problems.append(
                f"{origin}: {key!r} is accepted by veRL 0.9.1 but never read (silently ignored); "
                f"use {replacement}"
            )
        elif prefix in ("+", "++") and not is_deliberate_addition(key):
            problems.append(
                f"{origin}: {text!r} adds a key veRL 0.9.1's config does not define, so nothing would "
                "read it; drop the '+' to set an existing key (Hydra then checks it exists), or use one of "
                + ", ".join(a.rstrip(".") for a in DELIBERATE_ADDITIONS)
            )
    if problems:
        raise ConfigError("refused veRL overrides:\n  " + "\n  ".join(problems))


def is_deliberate_addition(key: str) -> bool:
    return any(key == a.rstrip(".") or key.startswith(a) for a in DELIBERATE_ADDITIONS)


def reward_function_path() -> str:
    """`pkg://vlmrl.reward.verl_entry`: how veRL finds our reward, by module name on every node."""
    if importlib.util.find_spec(REWARD_ENTRY_MODULE) is None:
        raise ConfigError(f"{REWARD_ENTRY_MODULE} is not importable; reinstall vlmrl")
    return "pkg://" + REWARD_ENTRY_MODULE


def build_overrides(cfg: ExperimentConfig, reward_path: str | None = None) -> list[Override]:
    """The structured overrides for `cfg`, in the order they are passed (extra_overrides not included).

    What veRL cannot run (an `hf` rollout, no GPUs, a frozen vision tower, the overlong penalty without
    the dapo manager) was refused when `cfg` was loaded (`vlmrl.train.backends.SUPPORT`).
    """
    a, d, m, r, t, rw = cfg.algorithm, cfg.data, cfg.model, cfg.rollout, cfg.trainer, cfg.reward
    actor = "actor_rollout_ref.actor"
    rollout = "actor_rollout_ref.rollout"
    model = "actor_rollout_ref.model"
    uses_reference = a.use_kl_loss or a.use_kl_in_reward
    out: list[Override] = []

    def put(key: str, value: Any, plus: bool = False) -> None:
        out.append(Override(key, value, plus))

    # data
    put("data.train_files", list(d.train_files))
    # veRL 0.9.1 always builds a validation set and fails on an empty file list ("Unable to concatenate
    # an empty list of datasets"): without validation files, validation is switched off and one
    # training row stands in for the set it still builds.
    validates = bool(d.val_files)
    put("data.val_files", list(d.val_files) if validates else list(d.train_files[:1]))
    if not validates:
        put("data.val_max_samples", 1)
    put("data.prompt_key", d.prompt_key)
    put("data.image_key", d.image_key)
    put("data.max_prompt_length", d.max_prompt_length)
    put("data.max_response_length", r.max_response_length)
    put("data.filter_overlong_prompts", d.filter_overlong_prompts)
    put("data.train_batch_size", d.train_batch_size)
    if d.val_batch_size is not None:
        put("data.val_batch_size", d.val_batch_size)
    put("data.shuffle", d.shuffle)
    put("data.seed", t.seed)
    put("data.dataloader_num_workers", d.dataloader_num_workers)
    put("data.trust_remote_code", m.trust_remote_code)
    if d.min_pixels is not None:
        put("data.mm_processor_kwargs.min_pixels", d.min_pixels, plus=True)
    if d.max_pixels is not None:
        put("data.mm_processor_kwargs.max_pixels", d.max_pixels, plus=True)

    # algorithm (GRPO, no critic)
    put("algorithm.adv_estimator", a.adv_estimator)
    put("algorithm.norm_adv_by_std_in_grpo", a.norm_adv_by_std_in_grpo)
    put("algorithm.use_kl_in_reward", a.use_kl_in_reward)
    if a.use_kl_in_reward:
        put("algorithm.kl_penalty", a.kl_loss_type)
        put("algorithm.kl_ctrl.kl_coef", a.kl_loss_coef)
    put("algorithm.filter_groups.enable", a.filter_groups.enable)
    put("algorithm.filter_groups.metric", a.filter_groups.metric)

    # model
    put(f"{model}.path", m.path)
    put(f"{model}.trust_remote_code", m.trust_remote_code)
    put(f"{model}.enable_gradient_checkpointing", m.gradient_checkpointing)
    put(f"{model}.use_remove_padding", True)
    put(f"{model}.external_lib", PATCH_MODULE)
    put(f"{model}.lora_rank", m.lora_rank)
    if m.lora_rank > 0:
        put(f"{model}.lora_alpha", m.lora_alpha)
        put(f"{model}.target_modules", m.lora_target_modules)

    # actor (policy loss: clip-higher, dual clip, token-mean; optimiser)
    put(f"{actor}.strategy", "fsdp")
    put(f"{actor}.clip_ratio_low", a.clip_ratio_low)
    put(f"{actor}.clip_ratio_high", a.clip_ratio_high)
    put(f"{actor}.clip_ratio_c", a.clip_ratio_c)
    put(f"{actor}.loss_agg_mode", a.loss_agg_mode)
    put(f"{actor}.use_kl_loss", a.use_kl_loss)
    put(f"{actor}.kl_loss_coef", a.kl_loss_coef)
    put(f"{actor}.kl_loss_type", a.kl_loss_type)
    put(f"{actor}.entropy_coeff", a.entropy_coeff)
    put(f"{actor}.ppo_mini_batch_size", a.ppo_mini_batch_size)
    put(f"{actor}.ppo_micro_batch_size_per_gpu", a.ppo_micro_batch_size_per_gpu)
    put(f"{actor}.ppo_epochs", a.ppo_epochs)
    put(f"{actor}.use_dynamic_bsz", a.use_dynamic_bsz)
    # One full prompt + response must fit a dynamic micro-batch.
    put(f"{actor}.ppo_max_token_len_per_gpu", d.max_prompt_length + r.max_response_length)
    put(f"{actor}.optim.lr", a.lr)
    put(f"{actor}.optim.lr_warmup_steps", a.lr_warmup_steps)
    put(f"{actor}.optim.weight_decay", a.weight_decay)
    put(f"{actor}.optim.clip_grad", a.grad_clip)
    put(f"{actor}.fsdp_config.param_offload", m.param_offload)
    put(f"{actor}.fsdp_config.optimizer_offload", m.optimizer_offload)
    # veRL's FSDP engine computes in `fsdp_config.mixed_precision.param_dtype` (autocast; default
    # bf16) and never reads `fsdp_config.dtype` (Megatron's key): without this a float32 config
    # still trained in bf16 against a float32 rollout.
    put(f"{actor}.fsdp_config.mixed_precision.param_dtype", m.dtype, plus=True)
    # The run's seed everywhere veRL draws: torch in the training workers, mini-batch shuffling, and
    # vLLM's sampling (each request's own seed derives from it, vlmrl.train.verl.seeding).
    put(f"{actor}.fsdp_config.seed", t.seed)
    put(f"{actor}.data_loader_seed", t.seed)
    if uses_reference:
        put("actor_rollout_ref.ref.fsdp_config.param_offload", m.param_offload)
        put("actor_rollout_ref.ref.fsdp_config.mixed_precision.param_dtype", m.dtype, plus=True)
        put("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", a.ppo_micro_batch_size_per_gpu)

    # rollout
    put(f"{rollout}.name", r.engine)
    put(f"{rollout}.n", r.n)
    put(f"{rollout}.temperature", r.temperature)
    put(f"{rollout}.top_p", r.top_p)
    put(f"{rollout}.top_k", r.top_k)
    put(f"{rollout}.seed", t.seed)
    put(f"{rollout}.gpu_memory_utilization", r.gpu_memory_utilization)
    put(f"{rollout}.tensor_model_parallel_size", r.tensor_model_parallel_size)
    put(f"{rollout}.enforce_eager", r.enforce_eager)
    put(f"{rollout}.dtype", m.dtype)
    put(f"{rollout}.log_prob_micro_batch_size_per_gpu", a.ppo_micro_batch_size_per_gpu)
    put(f"{rollout}.val_kwargs.n", r.val_n)
    put(f"{rollout}.val_kwargs.temperature", r.val_temperature)
    put(f"{rollout}.val_kwargs.top_p", r.top_p if r.val_temperature > 0 else 1.0)
    put(f"{rollout}.val_kwargs.do_sample", r.val_temperature > 0)
    if r.limit_images > 0:
        put(f"{rollout}.limit_images", r.limit_images, plus=True)

    # reward: our compute_score, loaded by module name, plus the dapo manager's overlong buffer
    put("reward.reward_manager.name", rw.manager)
    put("reward.custom_reward_function.path", reward_path or reward_function_path())
    put("reward.custom_reward_function.name", REWARD_FUNCTION_NAME)
    for key, value in rw.reward_kwargs().items():
        put(f"reward.custom_reward_function.reward_kwargs.{key}", value, plus=True)
    if rw.manager == "dapo":
        put("reward.reward_kwargs.overlong_buffer_cfg.enable", rw.overlong.enable, plus=True)
        put("reward.reward_kwargs.overlong_buffer_cfg.len", rw.overlong.len, plus=True)
        put("reward.reward_kwargs.overlong_buffer_cfg.penalty_factor", rw.overlong.penalty_factor, plus=True)
        put("reward.reward_kwargs.overlong_buffer_cfg.log", rw.overlong.enable, plus=True)
        put("reward.reward_kwargs.max_resp_len", r.max_response_length, plus=True)

    # trainer
    put("trainer.nnodes", t.nnodes)
    put("trainer.n_gpus_per_node", t.n_gpus_per_node)
    put("trainer.total_epochs", t.total_epochs)
    if t.total_training_steps is not None:
        put("trainer.total_training_steps", t.total_training_steps)
    put("trainer.save_freq", t.save_freq)
    put("trainer.test_freq", t.test_freq if validates else -1)
    put("trainer.val_before_train", t.val_before_train and validates)
    put("trainer.logger", [_LOGGERS[name] for name in t.logger])
    put("trainer.project_name", t.project_name)
    put("trainer.experiment_name", t.experiment_name)
    put("trainer.default_local_dir", os.path.join(t.resolved_output_dir(), "checkpoints"))
    put("trainer.resume_mode", t.resume_mode)
    if t.resume_mode == "resume_path":
        if not t.resume_from_path:
            raise ConfigError("trainer.resume_mode=resume_path needs trainer.resume_from_path")
        if "global_step_" not in Path(t.resume_from_path).name:
            # veRL's trainer asserts this only after Ray and the rollout engine have started.
            raise ConfigError(
                f"trainer.resume_from_path={t.resume_from_path!r} must be a checkpoint folder named "
                "global_step_N (e.g. <output_dir>/checkpoints/global_step_40), not the run's root"
            )
        put("trainer.resume_from_path", t.resume_from_path)
    put("trainer.max_actor_ckpt_to_keep", t.max_actor_ckpt_to_keep)
    put("trainer.device", "cuda")
    return out


#: Our logger names -> veRL's (`file` writes JSON lines).
_LOGGERS = {"console": "console", "wandb": "wandb", "tensorboard": "tensorboard", "jsonl": "file"}


def merged_overrides(
    cfg: ExperimentConfig, reward_path: str | None = None
) -> tuple[list[Override], list[str]]:
    """(our overrides minus the keys `extra_overrides` sets, the full `main_ppo` argument list).

    `extra_overrides` are checked and come last; a key they set replaces ours instead of appearing
    twice (e.g. `reward.custom_reward_function.path` as the cluster nodes see it).
    """
    check_raw_overrides(cfg.extra_overrides)
    taken = {override_key(text)[1] for text in cfg.extra_overrides}
    ours = [o for o in build_overrides(cfg, reward_path) if o.key not in taken]
    args = [o.render() for o in ours]
    if HYDRA_RUN_DIR not in taken:
        args.append(f"{HYDRA_RUN_DIR}={format_value(hydra_run_dir(cfg))}")
    return ours, args + list(cfg.extra_overrides)


#: Hydra's own setting (not part of veRL's config, so not an `Override` checked against it).
HYDRA_RUN_DIR = "hydra.run.dir"


def hydra_run_dir(cfg: ExperimentConfig) -> str:
    """Where `main_ppo`'s Hydra writes its `.hydra/` config copy and log: beside the checkpoints, in
    the run's output directory, not `outputs/<date>/<time>/` in whatever directory the launch ran."""
    return os.path.join(cfg.trainer.resolved_output_dir(), "hydra")


def to_hydra_args(cfg: ExperimentConfig, reward_path: str | None = None) -> list[str]:
    """The full override list for `main_ppo`: ours, then the config's `extra_overrides` (checked)."""
    return merged_overrides(cfg, reward_path)[1]
