"""Turn a veRL FSDP actor checkpoint into a Hugging Face model directory (veRL's model merger).

Wraps `python -m verl.model_merger merge --backend fsdp`; finds the actor directory from a run's
checkpoint root, a `global_step_N` folder or the actor folder itself, and says clearly when it is none.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from vlmrl.errors import UserError

_SHARD = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")
LATEST_FILE = "latest_checkpointed_iteration.txt"


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The `global_step_N` folder veRL's latest-step file under `ckpt_root` names, when both exist."""
    root = Path(ckpt_root)
    try:
        step = int((root / LATEST_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    folder = root / f"global_step_{step}"
    return folder if folder.is_dir() else None


class NotACheckpointError(UserError):
    """The directory is not a veRL FSDP actor checkpoint."""


def _is_actor_dir(p: Path) -> bool:
    return (p / "fsdp_config.json").is_file() and any(
        _SHARD.match(f.name) for f in p.iterdir() if f.is_file()
    )


def find_actor_dir(ckpt_dir: str | Path) -> Path:
    """The actor checkpoint folder under `ckpt_dir` (root with the latest-step file, global_step_N, or actor)."""
    p = Path(ckpt_dir)
    if not p.is_dir():
        raise NotACheckpointError(
            f"{p}: not a directory; pass a veRL checkpoint folder (…/global_step_N/actor)"
        )
    if (p / LATEST_FILE).is_file():
        step = (p / LATEST_FILE).read_text(encoding="utf-8").strip()
        p = p / f"global_step_{step}"
        if not p.is_dir():
            raise NotACheckpointError(f"{ckpt_dir}: {LATEST_FILE} names step {step}, but {p} is missing")
    if (p / "actor").is_dir():
        p = p / "actor"
    if not _is_actor_dir(p):
        raise NotACheckpointError(
            f"{ckpt_dir}: not a veRL FSDP actor checkpoint (expected fsdp_config.json and "
            "model_world_size_<W>_rank_<R>.pt, as in <trainer.default_local_dir>/global_step_N/actor)"
        )
    shards = [m for m in (_SHARD.match(f.name) for f in p.iterdir()) if m]
    world_sizes = {int(m.group(1)) for m in shards}
    if len(world_sizes) != 1:
        raise NotACheckpointError(
            f"{p}: shards from several world sizes {sorted(world_sizes)}; keep one run's"
        )
    (world_size,) = world_sizes
    missing = sorted(set(range(world_size)) - {int(m.group(2)) for m in shards})
    if missing:
        raise NotACheckpointError(f"{p}: missing shards for ranks {missing} of world size {world_size}")
    if not (p / "huggingface" / "config.json").is_file():
        raise NotACheckpointError(f"{p}: no huggingface/config.json (veRL saves the model config there)")
    return p


def merge_command(actor_dir: Path, target_dir: str | Path, trust_remote_code: bool = False) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(actor_dir),
        "--target_dir",
        str(target_dir),
    ]
    if trust_remote_code:
        argv.append("--trust-remote-code")
    return argv


def export(ckpt_dir: str | Path, target_dir: str | Path, trust_remote_code: bool = False) -> Path:
    """Merge the actor shards under `ckpt_dir` into a Hugging Face directory at `target_dir`."""
    actor = find_actor_dir(ckpt_dir)
    target = Path(target_dir)
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target}: exists and is not empty; choose a new -o directory")
    proc = subprocess.run(
        merge_command(actor, target, trust_remote_code), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise UserError(f"veRL's model merger failed on {actor} (exit {proc.returncode}):\n{tail}")
    if not (target / "config.json").is_file():
        raise UserError(f"veRL's model merger exited cleanly but wrote no config.json to {target}")
    return target
