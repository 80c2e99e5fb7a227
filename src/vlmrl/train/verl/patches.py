"""Fixes for veRL 0.9.1 crashes on our stack, and the training metrics it lacks; imported via `external_lib`.

veRL imports this module through `actor_rollout_ref.model.external_lib=vlmrl.train.verl.patches`;
importing it applies the fixes once (idempotent) and only to veRL code shaped like 0.9.1.

1. Text-only Qwen2.5-VL micro-batches: `verl.models.transformers.qwen2_vl._get_input_embeds` runs
   the vision tower on a dummy image when a micro-batch has no pixels (so every FSDP rank runs the
   same collective ops), then calls `.mean()` on the tower's output. transformers 5.x returns a
   `BaseModelOutputWithPooling` there, not a tensor, so mixed text + image training dies on the
   first text-only micro-batch. The fix unpacks the output the way veRL's image path already does
   and keeps the `0.0 * mean` term, so the vision tower still gets a (zero) gradient.
2. TRL >= 1.0 installed beside veRL: `apply_monkey_patch` sees `trl` importable and imports
   `AutoModelForCausalLMWithValueHead`, which TRL 1.x no longer has, so building any model fails.
   The fix makes that check ask for the class, not just the package (veRL only needs it for the
   value-head models we never train).
3. M-RoPE position ids after a Ray hop: `verl.utils.tensordict_utils.maybe_fix_3d_position_ids`
   restores the ragged dim of the (batch, 4, seq) jagged `position_ids` that pickling loses by
   forcing `_ragged_idx = 2`. When every sequence in the batch has the same length, torch built the
   tensor with the 4 rows as the ragged dim (`_ragged_idx = 1`), so forcing 2 breaks every later
   split (`split_with_sizes expects split_sizes to sum exactly to ...`). The fix reads the ragged
   dim off the tensor's own values and offsets instead.
4. Per-kind training metrics: veRL keeps each response's reward dict (`reward_extra_info`) but logs
   only batch-wide numbers. `apply_reward_metrics` adds reward, accuracy, format rate and response
   length per row kind (`modality/text/...`, `modality/image/...`) and per data source, and the
   judge's calls, failures, latency and overturns (`vlmrl.train.metrics.reward_metrics`: the same
   keys TRL's backend logs) to the metrics of each training step. It runs in veRL's trainer process,
   which imports this module when it builds the model config (`HFModelConfig` imports `external_lib`).
5. Reproducibility and the image-row check (`apply_parity_hooks`): a vLLM sampling seed per rollout
   request (`vlmrl.train.verl.seeding`; veRL's own `full_determinism` gives a group's n requests one
   seed) and |log p(vLLM) - log p(actor)| per row kind (`vlmrl.train.verl.alignment`). docs/parity.md.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from typing import Any

logger = logging.getLogger(__name__)

#: veRL versions whose `_get_input_embeds` this fix was written against (checked in tests).
SUPPORTED_VERL_PREFIXES = ("0.9.",)
_EXPECTED_PARAMS = (
    "model",
    "input_ids",
    "attention_mask",
    "pixel_values",
    "pixel_values_videos",
    "image_grid_thw",
    "video_grid_thw",
)
_MARKER = "_vlmrl_text_only_fix"


class PatchNotApplied(UserWarning):
    """The installed veRL does not look like the code this fix targets; nothing was changed."""


def _fixed(original):
    """Wrap veRL's `_get_input_embeds`: image/video micro-batches go to veRL; text-only ones are ours."""
    import torch
    from verl.utils.transformers_compat import unpack_visual_output

    @functools.wraps(original)
    def _get_input_embeds(
        model,
        input_ids,
        attention_mask=None,
        pixel_values=None,
        pixel_values_videos=None,
        image_grid_thw=None,
        video_grid_thw=None,
    ):
        if pixel_values is not None or pixel_values_videos is not None:
            return original(
                model,
                input_ids,
                attention_mask,
                pixel_values,
                pixel_values_videos,
                image_grid_thw,
                video_grid_thw,
            )
        inputs_embeds = model.get_input_embeddings()(input_ids)
        vision_config = model.config.vision_config
        patch_dim = (
            vision_config.in_channels * vision_config.temporal_patch_size * vision_config.patch_size**2
        )
        # One 4x4-patch dummy image, as veRL uses: the smallest grid the 2x2 spatial merge accepts.
        dummy_pixels = torch.zeros((16, patch_dim), dtype=model.visual.dtype, device=inputs_embeds.device)
        dummy_grid = torch.tensor([[1, 4, 4]], dtype=torch.long, device=inputs_embeds.device)
        dummy_embeds, _ = unpack_visual_output(model.visual(dummy_pixels, grid_thw=dummy_grid))
        # 0.0 * mean keeps the tower in the autograd graph: zero gradient, same collectives on every rank.
        inputs_embeds = inputs_embeds + 0.0 * dummy_embeds.mean().to(inputs_embeds.dtype)
        if attention_mask is not None:
            attention_mask = attention_mask.to(inputs_embeds.device)
        return inputs_embeds, attention_mask

    setattr(_get_input_embeds, _MARKER, True)
    _get_input_embeds.__wrapped_original__ = original
    return _get_input_embeds


def is_applied() -> bool:
    """Whether veRL's Qwen2-VL module currently carries the fix."""
    try:
        from verl.models.transformers import qwen2_vl
    except ImportError:
        return False
    return bool(getattr(qwen2_vl._get_input_embeds, _MARKER, False))


def apply() -> bool:
    """Install the fix into `verl.models.transformers.qwen2_vl`; True when the fix is (now) in place.

    Safe to call any number of times. veRL's `qwen2_vl_base_forward` (installed on the model class by
    `apply_monkey_patch`) looks `_get_input_embeds` up in its module at call time, so replacing the
    module attribute works whether this runs before or after veRL patches the model.
    On an unrecognised veRL it warns (`PatchNotApplied`) and changes nothing.
    """
    try:
        import verl
        from verl.models.transformers import qwen2_vl
    except ImportError as exc:
        warnings.warn(
            f"vlmrl.train.verl.patches: veRL is not importable ({exc}); no fix applied",
            PatchNotApplied,
            stacklevel=2,
        )
        return False
    current: Any = getattr(qwen2_vl, "_get_input_embeds", None)
    if current is not None and getattr(current, _MARKER, False):
        return True
    version = getattr(verl, "__version__", "unknown")
    problems = []
    if not version.startswith(SUPPORTED_VERL_PREFIXES):
        problems.append(f"veRL {version} is not one of {SUPPORTED_VERL_PREFIXES}")
    if current is None:
        problems.append("verl.models.transformers.qwen2_vl._get_input_embeds is missing")
    else:
        params = tuple(inspect.signature(current).parameters)
        if params != _EXPECTED_PARAMS:
            problems.append(f"_get_input_embeds takes {params}, expected {_EXPECTED_PARAMS}")
    if not hasattr(qwen2_vl, "qwen2_vl_base_forward"):
        problems.append("verl.models.transformers.qwen2_vl.qwen2_vl_base_forward is missing")
    if problems:
        warnings.warn(
            "vlmrl.train.verl.patches: not applying the text-only Qwen2.5-VL fix: "
            + "; ".join(problems)
            + ". Mixed 'native' batches may crash; use data.mixed_policy=blank or check the veRL version.",
            PatchNotApplied,
            stacklevel=2,
        )
        return False
    qwen2_vl._get_input_embeds = _fixed(current)
    logger.info("vlmrl: patched veRL %s qwen2_vl._get_input_embeds for text-only micro-batches", version)
    return True


def _value_head_importable() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trl.experimental warns on import
        try:
            from trl.experimental.ppo import AutoModelForCausalLMWithValueHead  # noqa: F401
        except ImportError:
            try:
                from trl import AutoModelForCausalLMWithValueHead  # noqa: F401
            except ImportError:
                return False
    return True


def apply_trl_check() -> bool:
    """Make veRL's monkey patch skip TRL's value-head class when the installed TRL lacks it.

    Returns True when `apply_monkey_patch` is now safe with the installed TRL (patched or not needed).
    """
    try:
        from verl.models.transformers import monkey_patch
    except ImportError:
        return False
    current = getattr(monkey_patch, "is_trl_available", None)
    if current is None or getattr(current, _MARKER, False):
        return current is not None
    if not current() or _value_head_importable():
        return True

    def is_trl_available() -> bool:
        return _value_head_importable()

    setattr(is_trl_available, _MARKER, True)
    monkey_patch.is_trl_available = is_trl_available
    return True


#: Modules that import `maybe_fix_3d_position_ids` by name in veRL 0.9.1 (each gets the fixed function).
_POSITION_IDS_USERS = (
    "verl.utils.tensordict_utils",
    "verl.workers.engine.base",
    "verl.workers.engine_workers",
    "verl.workers.engine_workers_tinker",
)


def fix_3d_position_ids(data) -> None:
    """Give a 3-D jagged `position_ids` in `data` the ragged dim its values and offsets say it has.

    A jagged tensor's `_values` hold the components concatenated along the ragged dim, so that dim is
    the one of `_values` whose size is the last offset. When both dims match (one sample of shape
    (4, 4)) either reading gives the same components; the sequence dim (2) is kept then.
    """
    if "position_ids" not in data.keys():  # noqa: SIM118 (TensorDict refuses `in`)
        return
    position_ids = data["position_ids"]
    if not (position_ids.is_nested and position_ids.dim() == 3):
        return
    total = int(position_ids._offsets[-1])
    values = position_ids._values.shape
    position_ids._ragged_idx = 2 if values[1] == total else 1 if values[0] == total else 2


setattr(fix_3d_position_ids, _MARKER, True)


def apply_position_ids_fix() -> bool:
    """Replace veRL's `maybe_fix_3d_position_ids` wherever 0.9.1 calls it; True when in place."""
    import importlib

    try:
        importlib.import_module(_POSITION_IDS_USERS[0])
    except ImportError:
        return False
    for name in _POSITION_IDS_USERS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue  # optional engines (e.g. tinker) need packages we do not install
        if hasattr(module, "maybe_fix_3d_position_ids"):
            module.maybe_fix_3d_position_ids = fix_3d_position_ids
    return True


def _as_list(values: Any) -> list[Any]:
    """A TransferQueue non-tensor field as a plain list (numpy array, NonTensorStack or list)."""
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    return [getattr(v, "data", v) for v in items]


def _has_image(raw_prompt: Any) -> bool:
    """Whether veRL's chat messages of one sample hold an image part."""
    for message in raw_prompt if isinstance(raw_prompt, (list, tuple)) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == "image" for p in content
        ):
            return True
    return False


def step_reward_metrics(batch: Any, kv_batch_get: Any) -> dict[str, float]:
    """`vlmrl.train.metrics.reward_metrics` of one veRL v1 training batch (a TransferQueue `KVBatchMeta`).

    Each response's reward dict is veRL's `extra_fields.reward_extra_info` (what our reward entry
    returned), its kind comes from `extra_info` (and the prompt's image parts), its length from the
    batch's `response_len` tags; padding samples are left out, as veRL's own metrics leave them.
    """
    from vlmrl.data.rows import row_modality
    from vlmrl.train.metrics import reward_metrics

    keep = [i for i, tag in enumerate(batch.tags) if not tag.get("is_padding", False)]
    data = kv_batch_get(
        keys=[batch.keys[i] for i in keep],
        partition_id=batch.partition_id,
        select_fields=["extra_fields", "extra_info", "data_source", "raw_prompt"],
    )
    extra_fields = _as_list(data["extra_fields"])
    infos = _as_list(data["extra_info"])
    sources = _as_list(data["data_source"])
    prompts = _as_list(data["raw_prompt"])
    results = [(f or {}).get("reward_extra_info") or {} for f in extra_fields]
    missing = [batch.keys[keep[i]] for i, r in enumerate(results) if "score" not in r]
    if missing:
        raise KeyError(
            f"{len(missing)} responses have no reward `score` in extra_fields.reward_extra_info: {missing[:3]}"
        )
    lengths = [batch.tags[i].get("response_len") for i in keep]
    modalities = [row_modality(info, _has_image(prompt)) for info, prompt in zip(infos, prompts, strict=True)]
    return reward_metrics(results, modalities, sources, None if None in lengths else lengths)


_METRICS_MARKER = "_vlmrl_reward_metrics"


def apply_reward_metrics() -> bool:
    """Add `step_reward_metrics` to what veRL's v1 trainer logs each step (`PPOTrainer._compute_metrics`).

    veRL 0.9.1 keeps every reward dict's extra keys per sample but aggregates none of them into the
    training metrics; this wraps the method that builds a step's metrics. A failure there is logged
    (once per kind of error) and the step goes on without these keys: a metric never stops training.
    """
    import sys

    # Only veRL's trainer process has the trainer imported (before it builds the model config, which
    # imports this module); the model and rollout workers are left alone, and spared the import.
    trainer_base = sys.modules.get("verl.trainer.ppo.v1.trainer_base")
    if trainer_base is None:
        return False
    import transfer_queue as tq

    trainer = getattr(trainer_base, "PPOTrainer", None)
    current = getattr(trainer, "_compute_metrics", None)
    if current is None:
        warnings.warn(
            "vlmrl.train.verl.patches: veRL's PPOTrainer._compute_metrics is missing; the per-kind, "
            "per-source and judge training metrics (modality/*, source/*, judge/*) are not logged",
            PatchNotApplied,
            stacklevel=2,
        )
        return False
    if getattr(current, _METRICS_MARKER, False):
        return True
    reported: set[str] = set()

    @functools.wraps(current)
    def _compute_metrics(self, batch, metrics, *args, **kwargs):
        out = current(self, batch, metrics, *args, **kwargs)
        try:
            metrics.update(step_reward_metrics(batch, tq.kv_batch_get))
        except Exception as exc:  # a metric must never stop a training run
            kind = type(exc).__name__
            if kind not in reported:
                reported.add(kind)
                logger.warning("vlmrl: per-kind reward metrics not logged this step: %s: %s", kind, exc)
        return out

    setattr(_compute_metrics, _METRICS_MARKER, True)
    trainer._compute_metrics = _compute_metrics
    return True


def apply_parity_hooks() -> bool:
    """A sampling seed per rollout request (vlmrl.train.verl.seeding) and the per-kind rollout-vs-update
    log-prob metrics (vlmrl.train.verl.alignment), in whichever veRL process imports this module (the
    agent-loop workers and the trainer build the model config, which imports it), on GPUs too."""
    from vlmrl.train.verl import alignment, seeding

    seeding.apply()
    alignment.apply()
    return True


APPLIED = apply()
PARITY_HOOKS_APPLIED = apply_parity_hooks()
TRL_CHECK_APPLIED = apply_trl_check()
POSITION_IDS_FIX_APPLIED = apply_position_ids_fix()
REWARD_METRICS_APPLIED = apply_reward_metrics()
