"""`vlmrl export`: a veRL FSDP actor checkpoint of the tiny model -> a Hugging Face directory, via veRL's merger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.train.verl.export import NotACheckpointError, find_actor_dir

runner = CliRunner()


def _actor_checkpoint(tiny_vlm_path: Path, root: Path, step: int = 3) -> Path:
    """The layout veRL's FSDP checkpoint manager writes at world size 1 (plain tensors, no DTensor)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    actor = root / f"global_step_{step}" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_vlm_path, dtype=torch.float32)
    torch.save(model.state_dict(), actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
    for f in Path(tiny_vlm_path).iterdir():
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy(f, actor / "huggingface" / f.name)
    (root / "latest_checkpointed_iteration.txt").write_text(str(step))
    return actor


@pytest.mark.slow
def test_export_merges_the_latest_actor_into_a_loadable_model(tiny_vlm_path, tmp_path):
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    actor = _actor_checkpoint(tiny_vlm_path, tmp_path / "ckpt")
    assert find_actor_dir(tmp_path / "ckpt") == actor
    assert find_actor_dir(actor.parent) == actor

    out = tmp_path / "hf"
    result = runner.invoke(app, ["export", str(tmp_path / "ckpt"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    merged = Qwen2_5_VLForConditionalGeneration.from_pretrained(out, dtype=torch.float32)
    source = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_vlm_path, dtype=torch.float32)
    for (name, a), (_, b) in zip(merged.state_dict().items(), source.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-2, rtol=1e-2), name  # the merger saves bfloat16
    assert AutoProcessor.from_pretrained(out) is not None

    again = runner.invoke(app, ["export", str(tmp_path / "ckpt"), "-o", str(out)])
    assert again.exit_code != 0 and "not empty" in str(again.exception)


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("hi")
    with pytest.raises(NotACheckpointError, match="not a veRL FSDP actor checkpoint"):
        find_actor_dir(tmp_path / "run")
    with pytest.raises(NotACheckpointError, match="not a directory"):
        find_actor_dir(tmp_path / "missing")
    (tmp_path / "run" / "latest_checkpointed_iteration.txt").write_text("7")
    with pytest.raises(NotACheckpointError, match="global_step_7"):
        find_actor_dir(tmp_path / "run")
    actor = tmp_path / "two" / "actor"
    actor.mkdir(parents=True)
    (actor / "fsdp_config.json").write_text("{}")
    (actor / "model_world_size_2_rank_0.pt").write_bytes(b"")
    with pytest.raises(NotACheckpointError, match=r"missing shards for ranks \[1\]"):
        find_actor_dir(tmp_path / "two")
    result = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and isinstance(result.exception, NotACheckpointError)


def test_dry_run_prints_the_merger_command(tiny_vlm_path, tmp_path):
    actor = tmp_path / "ck" / "global_step_1" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    (actor / "fsdp_config.json").write_text(json.dumps({"world_size": 1}))
    (actor / "model_world_size_1_rank_0.pt").write_bytes(b"")
    shutil.copy(Path(tiny_vlm_path) / "config.json", actor / "huggingface" / "config.json")
    result = runner.invoke(app, ["export", str(actor.parent), "-o", str(tmp_path / "hf"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "-m verl.model_merger merge --backend fsdp --local_dir" in result.stdout
    assert str(actor) in result.stdout and not (tmp_path / "hf").exists()
