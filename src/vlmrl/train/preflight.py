"""Preflight checks before a training launch: data files, model, GPUs, reward entry, verifier.

Each check reports ok / warn / fail with a message saying what to do; `--dry-run` shows the report,
a real launch refuses to start while any check fails.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vlmrl.data.rows import check_file
from vlmrl.errors import UserError
from vlmrl.train.config import ExperimentConfig

Status = Literal["ok", "warn", "fail", "info"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class PreflightError(UserError):
    """At least one preflight check failed; the message lists each one and what to do."""


@dataclass
class Check:
    name: str
    status: Status
    detail: str


@dataclass
class PreflightReport:
    checks: list[Check] = field(default_factory=list)
    budget_text: str = ""  # the token and memory budget tables (vlmrl.train.budget)

    def add(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_on_failure(self) -> None:
        if self.failures:
            lines = [f"{c.name}: {c.detail}" for c in self.failures]
            raise PreflightError("preflight failed:\n  " + "\n  ".join(lines))


# ---------------------------------------------------------------------------
# Data


def _check_data(cfg: ExperimentConfig, report: PreflightReport, cluster: bool) -> None:
    d = cfg.data
    if not d.train_files:
        report.add(
            "data", "fail", "data.train_files is empty; list the parquet files from `vlmrl data build`"
        )
    files = [("train", f) for f in d.train_files] + [("val", f) for f in d.val_files]
    image_kinds = set()
    for role, f in files:
        if cluster and not Path(f).exists():
            report.add(
                f"data ({role})", "warn", f"{f}: not on this machine; every Ray node must see it at this path"
            )
            continue
        try:
            rows, has_images = check_file(f, d.prompt_key, d.image_key)
        except UserError as exc:
            report.add(f"data ({role})", "fail", str(exc))
            continue
        if role == "train":
            image_kinds.add(has_images)
        kind = "images column" if has_images else "text only"
        report.add(f"data ({role})", "ok", f"{f}: {rows:,} rows, {kind}")
    if d.mixed_policy == "native" and False in image_kinds:
        report.add(
            "data (mixed)",
            "warn",
            "data.mixed_policy=native but a training file has no images column; build the mixed file "
            "with the native policy so text rows carry images: []",
        )


# ---------------------------------------------------------------------------
# Model, GPUs, reward entry, verifier


def _check_model(cfg: ExperimentConfig, report: PreflightReport) -> None:
    path = cfg.model.path
    p = Path(os.path.expanduser(path))
    if p.is_dir():
        config_file = p / "config.json"
        if not config_file.is_file():
            report.add(
                "model", "fail", f"{p}: no config.json; point model.path at a Hugging Face model directory"
            )
            return
        import json

        try:
            model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError) as exc:
            report.add("model", "fail", f"{config_file}: unreadable ({exc})")
            return
        report.add("model", *_family_verdict(str(p), model_type, "local"))
    elif _HUB_ID.match(path) and not path.startswith((".", "/", "~")):
        from vlmrl.tiny import family_from_name

        download = "each node downloads it (or set HF_HOME to a shared cache)"
        family = family_from_name(path)
        if family is None:
            report.add("model", "info", f"{path}: hub id of no family the name shows; {download}")
        else:
            status, detail = _family_verdict(path, family, "hub id of a")
            report.add("model", "info" if status == "ok" else status, f"{detail}; {download}")
    else:
        report.add(
            "model",
            "fail",
            f"{path}: neither a local model directory nor a hub id like Qwen/Qwen2.5-VL-7B-Instruct",
        )


def _family_verdict(where: str, model_type: object, kind: str) -> tuple[Status, str]:
    """(status, one line) for a model of `model_type`, from the one table of families (vlmrl.tiny.SUPPORTED)."""
    from vlmrl.tiny import SUPPORTED, supported_text

    family = SUPPORTED.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        return "warn", (
            f"{where}: model_type {model_type!r} is not a supported family ({supported_text()}); "
            "vlmrl's budget, patches and presets do not cover it"
        )
    scope = (
        ""
        if family.exercised
        else " (composed, validated and budgeted here; not trained end to end in vlmrl's tests)"
    )
    return "ok", f"{where}: {kind} {family.label} checkpoint ({model_type}){scope}"


def local_gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _check_gpus(cfg: ExperimentConfig, report: PreflightReport, cluster: bool) -> None:
    t = cfg.trainer
    need = t.n_gpus_per_node
    if cluster:
        report.add(
            "gpus", "info", f"{t.nnodes} node(s) x {need} GPU(s) requested; Ray places them at submission"
        )
        return
    if t.nnodes > 1:
        report.add(
            "gpus",
            "fail",
            f"trainer.nnodes={t.nnodes} needs a Ray cluster: set trainer.ray_address or $RAY_ADDRESS "
            "(see docs/multinode.md)",
        )
        return
    have = local_gpu_count()
    if have < need:
        report.add(
            "gpus",
            "fail",
            f"this machine has {have} GPU(s), config asks for trainer.n_gpus_per_node={need}; "
            "lower it (and check the batch sizes divide) or run on a GPU node",
        )
    else:
        report.add("gpus", "ok", f"{have} GPU(s) visible, {need} used")


def _check_reward_entry(reward_path: str, report: PreflightReport, cluster: bool) -> None:
    """veRL's `custom_reward_function.path`: a `pkg://module` name or a file."""
    if reward_path.startswith("pkg://"):
        import importlib.util

        module = reward_path[len("pkg://") :].replace("/", ".")
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if found:
            report.add("reward", "ok", f"{reward_path} (imported by name on every node)")
        elif cluster:
            report.add("reward", "warn", f"{reward_path}: not importable here; every Ray node must have it")
        else:
            report.add("reward", "fail", f"{reward_path} is not importable: install the package that has it")
        return
    if Path(reward_path).is_file():
        report.add("reward", "ok", f"{reward_path}")
    elif cluster:
        report.add("reward", "warn", f"{reward_path}: not on this machine; every Ray node must have it")
    else:
        report.add(
            "reward",
            "fail",
            f"{reward_path} is missing: this vlmrl install has no veRL reward entry; reinstall vlmrl",
        )


def check_verifier(url: str, model: str | None, timeout_s: float = 5.0) -> tuple[bool, str]:
    """GET {url}/models on an OpenAI-compatible server (with $REWARD_MODEL_API_KEY, when set);
    (reachable and serving `model`, detail)."""
    from vlmrl.utils import openai_api

    served, detail = openai_api.probe_models(
        url, timeout_s, "reward.verifier.timeout_s", api_key=os.environ.get("REWARD_MODEL_API_KEY") or None
    )
    if served is None:
        return False, detail
    if model and model not in served:
        return False, f"{openai_api.models_url(url)}: serves {served}, not {model!r} (reward.verifier.model)"
    return True, detail


def _check_verifier(cfg: ExperimentConfig, report: PreflightReport) -> None:
    v = cfg.reward.verifier
    url = v.url or os.environ.get("REWARD_MODEL_URL")
    model = v.model or os.environ.get("REWARD_MODEL_NAME")
    if not url:
        report.add("verifier", "info", "no verifier (reward.verifier.url unset): rule checks only")
        return
    reachable, detail = check_verifier(url, model, timeout_s=min(v.timeout_s, 10.0))
    if reachable:
        report.add("verifier", "ok", detail)
    else:
        status: Status = "fail" if v.on_unreachable == "fail" else "warn"
        hint = "start it (`vlmrl verifier serve`) or set reward.verifier.on_unreachable=warn"
        if status == "warn":
            hint = "launching anyway: answers the rules cannot decide score as wrong (verifier_error=1) meanwhile"
        report.add("verifier", status, f"{detail}; {hint}")


def check_budget(cfg: ExperimentConfig, report: PreflightReport, gpu_memory_gib: float | None = None) -> None:
    """Prompt tokens per row (vision included) against max_prompt_length, and GPU memory per GPU."""
    from vlmrl.train.budget import memory_budget, render_budget, token_budget

    tokens = None
    if any(Path(f).is_file() for f in cfg.data.train_files):
        try:
            tokens = token_budget(cfg)
        except UserError as exc:  # an unreadable file or image: training would stop on it too
            report.add("budget (tokens)", "fail", str(exc))
        else:
            status, detail = tokens.verdict()
            report.add("budget (tokens)", status, detail)  # type: ignore[arg-type]
    else:
        report.add("budget (tokens)", "info", "no training file on this machine to count")
    memory = memory_budget(cfg, gpu_memory_gib)
    if memory is None:
        report.add(
            "budget (memory)", "info", f"{cfg.model.path}: architecture unknown here (no local config.json)"
        )
    elif cfg.backend == "trl" and cfg.trainer.device == "cpu":
        report.add("budget (memory)", "info", "trainer.device=cpu: no GPU budget")
        memory = None
    else:
        status, detail = memory.verdict()
        report.add("budget (memory)", status, detail)  # type: ignore[arg-type]
    report.budget_text = render_budget(tokens, memory)


def run_preflight(
    cfg: ExperimentConfig,
    *,
    reward_path: str | None,
    cluster: bool = False,
    gpu_memory_gib: float | None = None,
) -> PreflightReport:
    """Every check for a veRL launch of `cfg`; `cluster` relaxes the checks only the cluster can answer.

    `reward_path`: veRL's reward entry file (None for TRL, which calls the reward in process);
    `gpu_memory_gib` is the GPU size the memory budget is checked against (default: the GPU found here).
    """
    report = PreflightReport()
    _check_data(cfg, report, cluster)
    _check_model(cfg, report)
    _check_gpus(cfg, report, cluster)
    if reward_path is not None:
        _check_reward_entry(reward_path, report, cluster)
    _check_verifier(cfg, report)
    check_budget(cfg, report, gpu_memory_gib)
    return report
