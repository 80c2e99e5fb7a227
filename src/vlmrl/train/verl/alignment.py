"""Rollout-vs-update agreement per kind of row: does the policy that trains see what vLLM sampled from?

veRL logs one `training/rollout_probs_diff_*` (probabilities) over the whole batch. A mistake that only touches image
rows (pixels or M-RoPE position ids out of step between vLLM and the training forward) hides in that
mean when half the batch is text. This adds, per kind of row (text: no image; image: an image grid),
the mean and max of |log p_rollout - log p_actor| over response tokens, as
`alignment/<kind>/logprob_diff_mean|max` and `alignment/<kind>/rows`. Both log-probs are of the same
weights (veRL recomputes the old log-probs before the update), so the two kinds should agree alike.
"""

from __future__ import annotations

import functools
import logging

logger = logging.getLogger(__name__)

KINDS = ("text", "image")
_MARKER = "_vlmrl_alignment"


def row_kinds(multi_modal_inputs) -> list[str]:
    """'image' for each row whose processor outputs carry an image grid, 'text' for the others."""
    return [
        "image" if isinstance(mm, dict) and "image_grid_thw" in mm else "text" for mm in multi_modal_inputs
    ]


def per_kind_logprob_diff(
    rollout_log_probs, old_log_probs, response_mask, kinds: list[str]
) -> dict[str, float]:
    """`alignment/<kind>/...` metrics from (rows, response tokens) tensors and each row's kind."""
    import torch

    diff = (rollout_log_probs.float() - old_log_probs.float()).abs()
    mask = response_mask.bool()
    out: dict[str, float] = {}
    for kind in KINDS:
        rows = torch.tensor([k == kind for k in kinds], dtype=torch.bool)
        out[f"alignment/{kind}/rows"] = float(rows.sum())
        picked = diff[rows][mask[rows]]
        if picked.numel() == 0:
            continue
        out[f"alignment/{kind}/logprob_diff_mean"] = float(picked.mean())
        out[f"alignment/{kind}/logprob_diff_max"] = float(picked.max())
    return out


def _row_tensors(data, key: str) -> list:
    """One 1-D tensor per row from a (jagged or padded) TensorDict entry."""
    value = data[key]
    return [value[i] for i in range(value.shape[0])]


def batch_metrics(data) -> dict[str, float]:
    """Per-kind metrics from a TensorDict with old_log_probs, rollout_log_probs, response_mask (one
    response per row, jagged or padded alike) and multi_modal_inputs."""
    import torch

    mm = data["multi_modal_inputs"]
    mm = mm.tolist() if hasattr(mm, "tolist") else list(mm)
    old, rollout, mask = (
        _row_tensors(data, k) for k in ("old_log_probs", "rollout_log_probs", "response_mask")
    )
    width = max(t.numel() for t in mask)

    def pad(rows):
        return torch.stack([torch.nn.functional.pad(t.float(), (0, width - t.numel())) for t in rows])

    return per_kind_logprob_diff(pad(rollout), pad(old), pad(mask), row_kinds(mm))


def _wrap(original):
    @functools.wraps(original)
    def _compute_old_log_prob(self, batch, metrics):
        batch = original(self, batch, metrics)
        if not self.config.actor_rollout_ref.rollout.calculate_log_probs:
            return batch
        import transfer_queue as tq

        fields = ["old_log_probs", "rollout_log_probs", "response_mask", "multi_modal_inputs"]
        try:
            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
            metrics.update(batch_metrics(data))
        except Exception as exc:  # a diagnostic must never stop training
            logger.warning("vlmrl alignment metrics skipped: %s: %s", type(exc).__name__, exc)
        return batch

    setattr(_compute_old_log_prob, _MARKER, True)
    return _compute_old_log_prob


def patch_trainer(module) -> bool:
    """Wrap the V1 trainer's `_compute_old_log_prob` (veRL's `verl.trainer.ppo.v1.trainer_base`) once."""
    trainer = getattr(module, "PPOTrainer", None)
    current = getattr(trainer, "_compute_old_log_prob", None)
    if current is None:
        return False
    if not getattr(current, _MARKER, False):
        trainer._compute_old_log_prob = _wrap(current)
    return True


def apply() -> None:
    """Add the per-kind metrics to veRL's V1 trainer (`trainer.use_v1`, 0.9.1's default) now if it is
    imported, else as soon as it is."""
    from vlmrl.train.verl.cpu import after_import

    after_import("verl.trainer.ppo.v1.trainer_base", patch_trainer)
