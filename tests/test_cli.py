"""The `vlmrl` command: stages listed, version, clean errors, config show."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from vlmrl import __version__
from vlmrl.cli import app

runner = CliRunner()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess (exercises main()'s error handling)."""
    return subprocess.run(
        [sys.executable, "-m", "vlmrl.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in ("data", "reward", "verifier", "train", "eval", "report", "demo", "config"):
        assert f" {stage} " in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"vlmrl {__version__}"


def test_config_show_prints_resolved_yaml(tmp_path):
    src = tmp_path / "exp.yaml"
    src.write_text(yaml.safe_dump({"rollout": {"n": 4}}))
    result = runner.invoke(app, ["config", "show", str(src), "rollout.temperature=0.7", "--plain"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["rollout"]["n"] == 4
    assert shown["rollout"]["temperature"] == 0.7
    assert shown["algorithm"]["clip_ratio_high"] == 0.28


def test_config_show_bad_key_is_one_clean_error(tmp_path):
    src = tmp_path / "exp.yaml"
    src.write_text(yaml.safe_dump({"rollout": {"nn": 4}}))
    proc = _run("config", "show", str(src))
    assert proc.returncode == 2
    assert "rollout.nn" in proc.stderr and "unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_doc_lists_keys():
    result = runner.invoke(app, ["config", "doc", "reward.verifier"])
    assert result.exit_code == 0
    assert "reward.verifier.url" in result.output
    assert "rollout.n" not in result.output


def test_demo_build_model_only(tmp_path):
    proc = _run("demo", "--build-model-only", "--model-dir", str(tmp_path / "tiny"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tiny" / "model.safetensors").is_file()
    assert "parameters" in proc.stdout


def _commands(group, prefix=()):
    import typer.main

    cmd = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, sub in sorted(cmd.commands.items()):
        path = (*prefix, name)
        yield path
        if hasattr(sub, "commands"):
            yield from _commands(sub, path)


def test_dash_h_works_on_every_command():
    paths = list(_commands(app))
    assert ("train",) in paths and ("config", "doc") in paths and ("data", "build") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "-h"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path


def test_config_doc_types_read_as_python():
    from vlmrl.train.config import config_doc

    types = {key: type_name for key, type_name, _, _ in config_doc()}
    assert types["rollout.n"] == "int" and types["rollout.temperature"] == "float"
    assert types["data.val_batch_size"] == "int | None" and types["data.val_files"] == "list[str]"
    assert not any("<class" in t for t in types.values())


def test_flags_show_no_value_placeholder():
    # `--dry-run <bool>` reads as if the flag took a value; a flag's type column stays empty.
    for path in _commands(app):
        result = runner.invoke(app, [*path, "-h"])
        assert "<bool>" not in result.output, path
    train_help = runner.invoke(app, ["train", "-h"]).output
    assert "--dry-run" in train_help and "--config" not in train_help


def test_piped_tables_print_whole():
    # stdout is a pipe here: rich would cut the table to 80 columns ("pass…") without the fix.
    from vlmrl.train.config import config_doc

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    proc = subprocess.run(
        [sys.executable, "-m", "vlmrl.cli", "config", "doc", "reward.verifier"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    rows = [row for row in config_doc() if row[0].startswith("reward.verifier")]
    assert len(rows) > 3
    for key, type_name, default, meaning in rows:
        line = next(line for line in proc.stdout.splitlines() if f" {key} " in line)
        assert type_name in line and default in line and meaning in line, (key, line)


def test_old_option_spellings_still_work_with_a_warning(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"sources": {"a": {"source": "generic"}}, "outputs": {}}))
    proc = _run("data", "build", str(recipe), "--source-path", "nosuch=/x")
    assert "--source-path is deprecated; use --data" in proc.stderr
    assert proc.returncode == 2 and "--data nosuch=...: no source 'nosuch'" in proc.stderr
