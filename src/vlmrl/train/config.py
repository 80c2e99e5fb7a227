"""The experiment config: one typed schema for a training run, loaded from YAML plus overrides.

Field descriptions are the reference documentation (`vlmrl config doc` prints them).
Unknown keys, wrong types and out-of-range values raise `ConfigError` naming the
key and where it came from (the YAML file or a `key=value` override).
"""

from __future__ import annotations

import copy
import os
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vlmrl.errors import UserError
from vlmrl.reward.knobs import KNOB, KNOBS
from vlmrl.train.backends import support
from vlmrl.utils.io import read_yaml_mapping
from vlmrl.utils.overrides import OverrideError, apply_overrides


class ConfigError(UserError, ValueError):
    """A config problem a user can fix; the message names the key and the file or override."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    path: str = Field(
        "Qwen/Qwen2.5-VL-7B-Instruct",
        description="Hub id or local directory of the policy model (a Qwen2.5-VL checkpoint).",
    )
    trust_remote_code: bool = Field(False, description="Pass trust_remote_code to transformers.")
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16", description="Training dtype; use float32 on CPU."
    )
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in the backward pass: saves memory, costs ~30% speed."
    )
    param_offload: bool = Field(
        True, description="veRL FSDP: keep parameters on CPU between steps (saves GPU memory, slower)."
    )
    optimizer_offload: bool = Field(
        True, description="veRL FSDP: keep optimizer state on CPU (saves GPU memory, slower)."
    )
    lora_rank: int = Field(0, ge=0, description="LoRA rank; 0 trains all weights.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scaling = alpha / rank).")
    lora_target_modules: list[str] | str = Field(
        "all-linear", description="Modules that get LoRA adapters ('all-linear' or a list of names)."
    )
    freeze_vision_tower: bool = Field(False, description="Keep the vision encoder's weights fixed.")


class DataConfig(_Section):
    train_files: list[str] = Field(
        default_factory=list, description="Training parquet files in veRL's row schema (`vlmrl data build`)."
    )
    val_files: list[str] = Field(default_factory=list, description="Validation parquet files.")
    mixed_policy: Literal["none", "blank", "native"] = Field(
        "none",
        description=(
            "How text-only rows sit beside image rows: 'none' (one kind only), 'blank' (text rows carry a "
            "blank image, the seed's way; costs vision tokens), 'native' (text rows carry no image; veRL "
            "needs vlmrl's fix module, loaded automatically)."
        ),
    )
    prompt_key: str = Field("prompt", description="Column holding the chat messages.")
    image_key: str = Field("images", description="Column holding the list of images.")
    max_prompt_length: int = Field(
        4096, ge=1, description="Longest prompt in tokens (vision tokens included)."
    )
    filter_overlong_prompts: bool = Field(True, description="Drop prompts longer than max_prompt_length.")
    train_batch_size: int = Field(64, ge=1, description="Prompts per training step (before rollout.n).")
    val_batch_size: int | None = Field(None, ge=1, description="Prompts per validation batch; None = all.")
    shuffle: bool = Field(True, description="Shuffle training prompts each epoch.")
    min_pixels: int | None = Field(None, ge=1, description="Per-image lower pixel bound for the processor.")
    max_pixels: int | None = Field(None, ge=1, description="Per-image upper pixel bound for the processor.")
    dataloader_num_workers: int = Field(8, ge=0, description="Dataloader worker processes.")


def _knob(key: str) -> Any:
    """The config field of a reward setting, as `vlmrl.reward.knobs` declares it (default, bounds,
    description): the reward's settings are declared there once."""
    k = KNOB[key]
    return Field(k.default, ge=k.ge, gt=k.gt, le=k.le, description=k.doc)


class VerifierConfig(_Section):
    url: str | None = _knob("verifier_url")
    model: str | None = _knob("verifier_model")
    timeout_s: float = _knob("verifier_timeout_s")
    max_retries: int = _knob("verifier_max_retries")
    concurrency: int = _knob("verifier_concurrency")
    on_unreachable: Literal["fail", "warn"] = Field(
        "warn", description="Preflight when the verifier does not answer: refuse to launch, or warn."
    )


class OverlongConfig(_Section):
    enable: bool = Field(True, description="DAPO soft overlong punishment near the response-length limit.")
    len: int = Field(2048, ge=0, description="Buffer in tokens before the limit where the penalty ramps up.")
    penalty_factor: float = Field(1.0, ge=0, description="Penalty at the limit (linear ramp from 0).")


class RewardConfig(_Section):
    correct_score: float = _knob("correct_score")
    incorrect_score: float = _knob("incorrect_score")
    format_score: float = _knob("format_score")
    rule_timeout_s: float = _knob("rule_timeout_s")
    manager: Literal["dapo", "naive"] = Field(
        "dapo", description="veRL reward manager: 'dapo' supports the overlong buffer; 'naive' does not."
    )
    overlong: OverlongConfig = Field(default_factory=OverlongConfig)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)

    def reward_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `vlmrl.reward.compute_score`, shared by the veRL and TRL backends:
        every reward setting that has a config key (`vlmrl.reward.knobs`). Unset ones (verifier
        url/model) are left out so the reward falls back to $REWARD_MODEL_URL / $REWARD_MODEL_NAME in
        the worker's environment.
        """
        kwargs: dict[str, Any] = {}
        for knob in KNOBS:
            if knob.config is None:
                continue
            value: Any = self
            for part in knob.config.split("."):
                value = getattr(value, part)
            if value is not None:
                kwargs[knob.key] = value
        return kwargs


def _check_reward_knobs() -> None:
    """Every reward setting with a config key is a field of the config with the knob's type."""
    for knob in KNOBS:
        if knob.config is None:
            continue
        model: Any = RewardConfig
        *sections, name = knob.config.split(".")
        for part in sections:
            model = model.model_fields[part].annotation
        field = model.model_fields.get(name)
        if field is None or knob.type not in (field.annotation, *getattr(field.annotation, "__args__", ())):
            raise TypeError(
                f"reward setting {knob.key}: reward.{knob.config} is not a {knob.type.__name__} field"
            )


_check_reward_knobs()


class FilterGroupsConfig(_Section):
    enable: bool = Field(
        True, description="DAPO dynamic sampling: drop groups whose samples all score alike."
    )
    metric: str = Field(
        "acc", description="Reward-dict key compared within a group (must exist on every sample)."
    )


class AlgorithmConfig(_Section):
    adv_estimator: Literal["grpo", "rloo", "reinforce_plus_plus", "remax", "opo", "gpg"] = Field(
        "grpo", description="Advantage estimator."
    )
    norm_adv_by_std_in_grpo: bool = Field(
        True, description="Divide group-relative advantages by the group std (False = Dr. GRPO)."
    )
    loss_agg_mode: Literal[
        "token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"
    ] = Field("token-mean", description="How per-token losses become one number ('token-mean' is DAPO's).")
    clip_ratio_low: float = Field(0.2, ge=0, le=1, description="PPO clip epsilon below 1.")
    clip_ratio_high: float = Field(
        0.28, ge=0, le=10, description="PPO clip epsilon above 1 (DAPO clip-higher)."
    )
    clip_ratio_c: float = Field(10.0, gt=1, description="Dual-clip bound for negative advantages.")
    use_kl_loss: bool = Field(False, description="Add a KL-to-reference loss (needs a reference model).")
    kl_loss_coef: float = Field(0.001, ge=0, description="Weight of the KL loss (beta).")
    kl_loss_type: Literal["kl", "abs", "mse", "low_var_kl", "full"] = Field(
        "low_var_kl", description="KL estimator."
    )
    use_kl_in_reward: bool = Field(False, description="Subtract KL from the reward instead of a loss term.")
    entropy_coeff: float = Field(0.0, ge=0, description="Entropy bonus weight.")
    filter_groups: FilterGroupsConfig = Field(default_factory=FilterGroupsConfig)
    lr: float = Field(1e-6, gt=0, le=1, description="Actor learning rate.")
    lr_warmup_steps: int = Field(10, ge=0, description="Linear warm-up steps.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, gt=0, description="Gradient-norm clip.")
    ppo_mini_batch_size: int = Field(
        8, ge=1, description="Prompts per optimizer step (each with rollout.n responses)."
    )
    ppo_micro_batch_size_per_gpu: int = Field(1, ge=1, description="Samples per forward pass per GPU.")
    ppo_epochs: int = Field(1, ge=1, description="Passes over each rollout batch.")
    use_dynamic_bsz: bool = Field(
        False, description="Pack micro-batches by token count instead of sample count."
    )


class RolloutConfig(_Section):
    engine: Literal["vllm", "sglang", "hf"] = Field("vllm", description="Generation engine.")
    n: int = Field(16, ge=1, description="Responses sampled per prompt (the GRPO group size).")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature during training.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling during training.")
    top_k: int = Field(-1, ge=-1, description="Top-k during training (-1 = off).")
    max_response_length: int = Field(8192, ge=1, description="Longest response in tokens.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vLLM's share of GPU memory.")
    tensor_model_parallel_size: int = Field(1, ge=1, description="vLLM tensor parallel size.")
    limit_images: int = Field(1, ge=0, description="Most images per prompt the engine must accept.")
    enforce_eager: bool = Field(False, description="Disable CUDA graphs in vLLM (slower, less memory).")
    val_n: int = Field(1, ge=1, description="Responses per prompt in validation.")
    val_temperature: float = Field(0.0, ge=0, description="Validation temperature (0 = greedy).")


class TrainerConfig(_Section):
    nnodes: int = Field(1, ge=1, description="Nodes in the Ray cluster.")
    n_gpus_per_node: int = Field(8, ge=0, description="GPUs per node (0 only for the TRL backend on CPU).")
    total_epochs: int = Field(5, ge=1, description="Passes over the training data.")
    total_training_steps: int | None = Field(
        None, ge=1, description="Stop after this many steps (overrides epochs)."
    )
    save_freq: int = Field(10, ge=-1, description="Checkpoint every N steps (-1 = never).")
    test_freq: int = Field(10, ge=-1, description="Validate every N steps (-1 = never).")
    val_before_train: bool = Field(True, description="Validate once before the first step.")
    logger: list[Literal["console", "wandb", "tensorboard", "jsonl"]] = Field(
        default_factory=lambda: ["console"], description="Where metrics go."
    )
    project_name: str = Field("vlmrl", description="Project name for loggers.")
    experiment_name: str = Field(
        "run", min_length=1, description="Run name; also names the output directory."
    )
    output_dir: str | None = Field(
        None, description="Checkpoints and logs; default outputs/<experiment_name>."
    )
    resume_mode: Literal["auto", "disable", "resume_path"] = Field(
        "auto", description="Resume from the latest checkpoint."
    )
    resume_from_path: str | None = Field(
        None, description="Checkpoint to resume when resume_mode=resume_path."
    )
    max_actor_ckpt_to_keep: int | None = Field(3, ge=1, description="Checkpoints kept (None = all).")
    ray_address: str | None = Field(
        None, description="Ray dashboard address for cluster submission; falls back to $RAY_ADDRESS."
    )
    seed: int = Field(42, description="Random seed.")
    device: Literal["auto", "cuda", "cpu"] = Field(
        "auto",
        description="TRL: the device. veRL: `cpu` runs veRL on CPUs (vlmrl.train.verl.cpu; every node of "
        "a cluster offers a fake GPU slot per training rank, see docs/multinode.md), else GPUs.",
    )

    def resolved_output_dir(self) -> str:
        return self.output_dir or os.path.join("outputs", self.experiment_name)


class ExperimentConfig(_Section):
    """Everything that defines one training run."""

    backend: Literal["verl", "trl"] = Field(
        "verl", description="Training engine: veRL on Ray, or TRL on one machine."
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    extra_overrides: list[str] = Field(
        default_factory=list,
        description="Raw engine overrides appended last (veRL Hydra keys); still validated against veRL.",
    )

    @model_validator(mode="after")
    def _check_cross_fields(self) -> ExperimentConfig:
        if self.algorithm.ppo_mini_batch_size > self.data.train_batch_size:
            raise ValueError(
                f"algorithm.ppo_mini_batch_size ({self.algorithm.ppo_mini_batch_size}) must not exceed "
                f"data.train_batch_size ({self.data.train_batch_size})"
            )
        if self.reward.overlong.enable and self.reward.overlong.len >= self.rollout.max_response_length:
            raise ValueError(
                f"reward.overlong.len ({self.reward.overlong.len}) must be smaller than "
                f"rollout.max_response_length ({self.rollout.max_response_length})"
            )
        return self


# ---------------------------------------------------------------------------
# Loading


def _format_errors(exc: ValidationError, source: str, override_keys: dict[str, str]) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "(top level)"
        origin, override = source, None
        for key, text in override_keys.items():
            # an override of a.b.c blames itself for errors at a.b.c, below it, or at an unknown a / a.b
            if loc == key or loc.startswith(key + ".") or key.startswith(loc + "."):
                origin, override = f"override {text!r}", (key, text)
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = "unknown key" + _unknown_key_hint(override[0] if override else loc, override)
        elif kind == "missing":
            msg = "required key is missing"
        else:
            got = err.get("input")
            msg = f"{err['msg']} (got {got!r})" if not isinstance(got, dict) else err["msg"]
        lines.append(f"{origin}: {loc}: {msg}")
    return "invalid experiment config:\n  " + "\n  ".join(lines)


# Top-level sections of veRL's own Hydra config that are not ours: a key under one is a raw veRL key.
_VERL_SECTIONS = (
    "actor_rollout_ref",
    "critic",
    "reward_model",
    "custom_reward_function",
    "reward",
    "ray_kwargs",
)


def _unknown_key_hint(key: str, override: tuple[str, str] | None) -> str:
    import difflib

    if key.split(".")[0] in _VERL_SECTIONS and key.split(".")[0] not in ExperimentConfig.model_fields:
        raw = override[1] if override else f"{key}=..."
        return (
            f": {key.split('.')[0]} is a veRL section, not a vlmrl key; raw veRL keys go in "
            f"extra_overrides, e.g. 'extra_overrides=[{raw}]' (still validated against veRL)"
        )
    known = [row[0] for row in config_doc()]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if close:
        return f"; did you mean {close[0]}? (`vlmrl config doc` lists every key)"
    return " (see `vlmrl config doc` for the valid keys)"


def load_config(path: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an experiment config from YAML (or defaults when `path` is None) and apply overrides.

    The result is also checked against what its backend supports (`vlmrl.train.backends.SUPPORT`)."""
    source = str(path) if path is not None else "<defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        raw = copy.deepcopy(read_yaml_mapping(path, "config", error=ConfigError))
    try:
        override_keys = apply_overrides(raw, list(overrides or []), example="rollout.n=8")
    except OverrideError as exc:
        raise ConfigError(str(exc)) from None
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source, override_keys)) from None
    check_support(cfg, source)
    return cfg


def check_support(cfg: ExperimentConfig, where: str = "config") -> list[str]:
    """Raise a `ConfigError` listing every knob `cfg.backend` refuses (`backends.SUPPORT`); return its notes."""
    refused, notes = support(cfg)
    if refused:
        raise ConfigError(
            f"{where}: backend={cfg.backend} cannot run this config:\n  " + "\n  ".join(refused)
        )
    return notes


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML, in schema order."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def type_label(annotation: Any) -> str:
    """A field's type as a reader writes it: `int`, `str | None`, `list[str]`, `Literal['a', 'b']`."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def config_doc() -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every leaf field, for `vlmrl config doc`."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, key + ".")
                continue
            default = field.get_default(call_default_factory=True)
            type_name = type_label(ann)
            rows.append((key, type_name, repr(default), field.description or ""))

    walk(ExperimentConfig, "")
    return rows
