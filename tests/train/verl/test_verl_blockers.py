"""The three veRL 0.9.1 launch blockers, each checked against the installed veRL code that failed.

1. `main_ppo.run` imports `transfer_queue`: our `[verl]` extra must bring veRL's `verl-core` extra.
2. A config without validation files: veRL still builds a validation set from `data.val_files`.
3. `maybe_fix_3d_position_ids` on a batch of equal-length sequences (vlmrl.train.verl.patches).
"""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]


def _pyproject():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_verl_extra_takes_verl_core_and_transfer_queue_imports():
    verl_extra = [Requirement(r) for r in _pyproject()["project"]["optional-dependencies"]["verl"]]
    verl = [r for r in verl_extra if r.name == "verl"]
    assert verl and "verl-core" in verl[0].extras, "the [verl] extra must be verl[verl-core]"
    # What veRL itself declares for that extra is installed, TransferQueue first of all.
    declared = [Requirement(r) for r in importlib.metadata.requires("verl")]
    core = [r.name for r in declared if r.marker and r.marker.evaluate({"extra": "verl-core"})]
    assert "TransferQueue" in core
    import transfer_queue  # noqa: F401  (main_ppo.run imports it before anything else)

    for name in core:
        importlib.metadata.version(name)  # raises PackageNotFoundError when missing


def test_no_validation_files_still_gives_verl_a_validation_set(tiny_vlm_path, data_dir):
    from transformers import AutoProcessor, AutoTokenizer
    from verl.trainer.ppo.utils import create_rl_dataset

    from vlmrl.data.build import build_from_examples
    from vlmrl.data.example import make_example
    from vlmrl.train.config import load_config
    from vlmrl.train.verl.overrides import build_overrides
    from vlmrl.train.verl.validate import validate

    train = data_dir / "train.parquet"
    examples = [make_example("demo", i, "train", f"What is {i}+1?", [str(i + 1)]) for i in range(3)]
    build_from_examples(examples, train)
    cfg = load_config(
        ROOT / "configs" / "train" / "text.yaml",
        [f"data.train_files=[{train}]", "data.val_files=[]", f"model.path={tiny_vlm_path}"],
    )
    overrides = build_overrides(cfg)
    verl_cfg = validate([o.render() for o in overrides], overrides)
    assert verl_cfg.trainer.test_freq == -1 and verl_cfg.trainer.val_before_train is False
    # What veRL's v1 trainer runs in _init_dataloader, with the composed values.
    tokenizer = AutoTokenizer.from_pretrained(tiny_vlm_path)
    processor = AutoProcessor.from_pretrained(tiny_vlm_path)
    val = create_rl_dataset(
        verl_cfg.data.val_files,
        verl_cfg.data,
        tokenizer,
        processor,
        is_train=False,
        max_samples=verl_cfg.data.val_max_samples,
    )
    assert len(val) == 1


def _position_ids(lengths: list[int]):
    """veRL's layout: per sample (4, seq_len), packed as in workers/utils/padding.py."""
    parts = [torch.arange(4 * n).reshape(4, n) for n in lengths]
    return parts, torch.nested.as_nested_tensor(parts, layout=torch.jagged)


def _after_ray_hop(nested):
    from tensordict import TensorDict

    td = TensorDict({"position_ids": nested}, batch_size=[nested.shape[0]])
    return pickle.loads(pickle.dumps(td.consolidate()))


@pytest.mark.parametrize("lengths", [[5, 5], [5, 7], [4], [3, 3, 3, 3]])
def test_3d_position_ids_fix_keeps_every_sample(lengths):
    from verl.utils import tensordict_utils
    from verl.workers import engine_workers
    from verl.workers.engine import base

    from vlmrl.train.verl import patches as verl_patches

    assert verl_patches.POSITION_IDS_FIX_APPLIED
    for module in (tensordict_utils, engine_workers, base):
        assert module.maybe_fix_3d_position_ids is verl_patches.fix_3d_position_ids
    parts, nested = _position_ids(lengths)
    td = _after_ray_hop(nested)
    tensordict_utils.maybe_fix_3d_position_ids(td)
    for got, want in zip(td["position_ids"].unbind(0), parts, strict=True):
        assert torch.equal(got, want)
    for chunk in tensordict_utils.chunk_tensordict(td, len(lengths)):
        assert chunk["position_ids"].shape[0] == 1


def test_verl_original_3d_position_ids_breaks_equal_lengths():
    """The bug the fix is for, with veRL's own function (kept by the patch as no module attribute)."""
    import inspect

    from verl.utils import tensordict_utils

    source = inspect.getsource(tensordict_utils).split("def maybe_fix_3d_position_ids", 1)[1]
    assert "_ragged_idx = 2" in source.split("\ndef ", 1)[0], "veRL's function changed: recheck the fix"
    parts, nested = _position_ids([5, 5])
    td = _after_ray_hop(nested)
    td["position_ids"]._ragged_idx = 2  # what veRL 0.9.1's function does unconditionally
    with pytest.raises(RuntimeError):
        [t.clone() for t in td["position_ids"].unbind(0)]
