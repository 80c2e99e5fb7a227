"""Curves from each log kind: PNGs written, and the plotted points match the logs step for step."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.errors import UserError
from vlmrl.report.curves import plot_curves, smooth
from vlmrl.report.logs import detect_kind, parse_verl_line, read_log

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _verl_formatter():
    """veRL 0.9.1's own console formatter, loaded from its file (skips verl/__init__'s heavy imports)."""
    import verl

    path = Path(verl.__file__).parent / "utils" / "logger" / "aggregate_logger.py"
    spec = importlib.util.spec_from_file_location("_verl_aggregate_logger", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.concat_dict_to_str


def write_metrics_jsonl(path: Path, steps: int) -> Path:
    lines = []
    for step in range(1, steps + 1):
        row = {"step": step, "reward_mean": -1 + step / steps, "response_length_mean": 100.0 + step}
        if step % 2 == 0:  # acc logged on every other step only
            row["acc_mean"] = step / (2 * steps)
        row["format_rate"] = 0.5
        lines.append(json.dumps(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_verl_console(path: Path, steps: int) -> Path:
    import numpy as np

    fmt = _verl_formatter()
    out = ["(TaskRunner pid=4242) Training Progress:   0%|          | 0/5", "some unrelated line step: none"]
    # veRL logs validation before training as step 0, then training (and every 2nd step validation).
    out.append(fmt({"val-core/aime24/acc/mean@16": np.float64(0.05)}, step=0))
    for step in range(1, steps + 1):
        data = {
            "critic/score/mean": np.float64(0.1 * step),
            "response_length/mean": np.float64(400.0 + step),
            "timing_s/gen": 3.5,
            "training/global_step": step,
        }
        if step % 2 == 0:
            data["val-core/aime24/acc/mean@16"] = np.float64(0.05 + 0.01 * step)
        out.append("(TaskRunner pid=4242) " + fmt(data, step=step))
    path.write_text("\n".join(out) + "\n")
    return path


def write_tensorboard(log_dir: Path, steps: int) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(log_dir))
    for step in range(1, steps + 1):
        writer.add_scalar("train/reward", 0.2 * step, step)
        writer.add_scalar("train/completions/mean_length", 50.0 + step, step)
    writer.close()
    return log_dir


def test_verl_line_parser_reads_numpy_reprs_and_ray_prefix():
    step, metrics = parse_verl_line(
        "(TaskRunner pid=1) step:12 - critic/score/mean:np.float64(0.25) - response_length/mean:456.7 "
        "- perf/total_num_tokens:1024 - x:nan"
    )
    assert step == 12
    assert metrics["critic/score/mean"] == 0.25
    assert metrics["response_length/mean"] == 456.7
    assert metrics["perf/total_num_tokens"] == 1024
    assert math.isnan(metrics["x"])
    assert parse_verl_line("epoch 1, step 3 done") is None


def test_curves_from_each_log_kind_on_one_plot(tmp_path):
    jsonl = write_metrics_jsonl(tmp_path / "text" / "metrics.jsonl", steps=7)
    console = write_verl_console(tmp_path / "mm.log", steps=5)
    tb = write_tensorboard(tmp_path / "tb_run", steps=4)
    assert [detect_kind(p) for p in (jsonl, console, tb)] == ["metrics_jsonl", "verl_console", "tensorboard"]

    out = tmp_path / "curves"
    pngs = plot_curves([jsonl, console, tb], out, smoothing=0.5)
    assert sorted(p.name for p in pngs) == ["acc.png", "format_rate.png", "response_length.png", "reward.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC

    data = json.loads((out / "curves.json").read_text())
    counts = {q: {s["label"]: len(s["steps"]) for s in fig["series"]} for q, fig in data["figures"].items()}
    assert counts["reward"] == {"text": 7, "mm": 5, "tb_run": 4}
    assert counts["response_length"] == {"text": 7, "mm": 5, "tb_run": 4}
    # acc: ours on even steps; veRL's validation accuracy as its own line (step 0, 2, 4).
    assert counts["acc"] == {"text": 3, "mm · val aime24": 3}
    assert counts["format_rate"] == {"text": 7}

    reward = {s["label"]: s for s in data["figures"]["reward"]["series"]}
    assert reward["mm"]["steps"] == [1, 2, 3, 4, 5]
    assert reward["mm"]["values"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert reward["tb_run"]["values"] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert reward["text"]["smoothed"] == pytest.approx(smooth(reward["text"]["values"], 0.5))
    val = next(s for s in data["figures"]["acc"]["series"] if s["label"] == "mm · val aime24")
    assert val["steps"] == [0, 2, 4]


def test_smoothing_is_debiased_ema():
    assert smooth([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    # hand-computed: ema1 = 0.5*0 + 0.5*2 = 1 -> /0.5 = 2; ema2 = 0.5*1 + 0.5*4 = 2.5 -> /0.75
    assert smooth([2.0, 4.0], 0.5) == pytest.approx([2.0, 2.5 / 0.75])
    assert smooth([3.0, 5.0], 0.0) == [3.0, 5.0]
    with pytest.raises(UserError, match="smoothing"):
        smooth([1.0], 1.0)


def test_bad_logs_name_the_file_and_line(tmp_path):
    bad = tmp_path / "metrics.jsonl"
    bad.write_text('{"step": 1, "reward_mean": 0.5}\nnot json\n{"step": 3}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:2"):
        read_log(bad)
    nostep = tmp_path / "b" / "metrics.jsonl"
    nostep.parent.mkdir()
    nostep.write_text('{"reward_mean": 0.5}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:1.*step"):
        read_log(nostep)
    text = tmp_path / "train.log"
    text.write_text("hello\nno metrics here\n")
    with pytest.raises(UserError, match="no veRL metrics lines"):
        read_log(text)
    with pytest.raises(UserError, match="none of"):
        plot_curves(
            [write_metrics_jsonl(tmp_path / "c" / "metrics.jsonl", 2)], tmp_path / "o", quantities=["kl"]
        )


def test_partial_last_line_is_reported_not_fatal(tmp_path):
    path = write_metrics_jsonl(tmp_path / "run" / "metrics.jsonl", 3)
    with path.open("a") as fh:
        fh.write('{"step": 4, "reward_')
    log = read_log(path)
    assert len(log.raw["reward_mean"]) == 3
    assert any("incomplete last line" in n for n in log.notes)


def test_cli_curves_with_names(tmp_path):
    jsonl = write_metrics_jsonl(tmp_path / "a" / "metrics.jsonl", 4)
    result = CliRunner().invoke(
        app,
        ["report", "curves", f"baseline={jsonl}", str(jsonl), "-o", str(tmp_path / "out"), "-m", "reward"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "curves.json").read_text())
    assert [s["label"] for s in data["figures"]["reward"]["series"]] == ["baseline", "a"]
    assert (tmp_path / "out" / "reward.png").is_file()


def test_curves_from_verl_file_logger(tmp_path, monkeypatch):
    """veRL's own file logger (our `jsonl` logger on veRL) writes {"step", "data": {...}} lines."""
    from verl.utils.tracking import FileLogger

    path = tmp_path / "verl_metrics.jsonl"
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    logger = FileLogger("proj", "exp")
    for step in range(1, 4):
        logger.log({"critic/score/mean": 0.1 * step, "response_length/mean": 100.0 + step}, step=step)
    logger.finish()
    data = plot_curves([path], tmp_path / "curves", quantities=("reward", "response_length"))
    assert len(data) == 2
    figures = json.loads((tmp_path / "curves" / "curves.json").read_text())["figures"]
    reward = figures["reward"]["series"][0]
    assert reward["steps"] == [1, 2, 3] and reward["values"] == pytest.approx([0.1, 0.2, 0.3])
    assert figures["response_length"]["series"][0]["values"] == pytest.approx([101.0, 102.0, 103.0])


def test_rates_in_percent_std_band_and_a_note(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [
        {"step": s, "reward_mean": 0.1 * s, "reward_std": 0.05 * s, "acc_mean": 0.25 * s, "format_rate": 0.5}
        for s in range(1, 4)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pngs = plot_curves([path], tmp_path / "curves", smoothing=0.5, note="train samples at T=1.0")
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    figures = json.loads((tmp_path / "curves" / "curves.json").read_text())["figures"]
    acc = figures["acc"]["series"][0]
    assert acc["values"] == pytest.approx([25.0, 50.0, 75.0])  # the tables' scale: percent
    assert figures["format_rate"]["series"][0]["values"] == pytest.approx([50.0] * 3)
    reward = figures["reward"]["series"][0]
    assert reward["std"] == pytest.approx([0.05, 0.10, 0.15]) and reward["values"] == pytest.approx(
        [0.1, 0.2, 0.3]
    )
    assert figures["acc"]["series"][0]["std"] is None  # no std logged for it: no band


def _group_rows(steps: int, kinds: dict[str, str]) -> list[dict]:
    """Rows with `modality/*` and `source/*` keys as both backends log them; `kinds`: source -> kind."""
    rows = []
    for step in range(1, steps + 1):
        row = {
            "step": step,
            "reward_mean": 0.0,
            "acc_mean": 0.5,
            "format_rate": 0.5,
            "response_length_mean": 30.0,
        }
        for i, (source, kind) in enumerate(sorted(kinds.items())):
            value = 0.1 * step + i
            row[f"source/{source}/reward_mean"] = value
            row[f"source/{source}/acc_mean"] = value / 10
            row[f"modality/{kind}/reward_mean"] = row.get(f"modality/{kind}/reward_mean", 0.0) + value
        rows.append(row)
    return rows


def test_a_line_per_row_kind_and_per_source_when_they_split_the_run(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    path.parent.mkdir()
    kinds = {"demo/largest_digit": "text", "demo/shape_colour": "image", "geo/3k": "image"}
    path.write_text("".join(json.dumps(r) + "\n" for r in _group_rows(3, kinds)))
    pngs = plot_curves([path], tmp_path / "curves", quantities=("reward", "acc"))
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    figures = json.loads((tmp_path / "curves" / "curves.json").read_text())["figures"]
    reward = {s["label"]: s for s in figures["reward"]["series"]}
    assert list(reward) == [
        "run · all",
        "run · text",
        "run · image",
        "run · source demo/largest_digit",
        "run · source demo/shape_colour",
        "run · source geo/3k",
    ]
    assert reward["run · text"]["values"] == pytest.approx([0.1, 0.2, 0.3])
    assert reward["run · image"]["values"] == pytest.approx([3.2, 3.4, 3.6])  # 0.1s + 1 + 0.1s + 2
    assert reward["run · source geo/3k"]["line"] == "source geo/3k"
    # acc: no per-kind key logged, so only the sources' lines beside the whole run's
    acc = [s["label"] for s in figures["acc"]["series"]]
    assert acc[0] == "run · all" and "run · text" not in acc and "run · source geo/3k" in acc


def test_one_kind_one_source_adds_no_lines(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in _group_rows(2, {"gsm8k": "text"})))
    plot_curves([path], tmp_path / "curves", quantities=("reward",))
    series = json.loads((tmp_path / "curves" / "curves.json").read_text())["figures"]["reward"]["series"]
    assert [s["label"] for s in series] == ["run"]


def test_judge_figures_by_default_only_when_the_verifier_was_asked(tmp_path):
    asked = tmp_path / "asked" / "metrics.jsonl"
    asked.parent.mkdir()
    rows = [
        {
            "step": s,
            "reward_mean": 0.1,
            "judge/calls": 4.0 * s,
            "judge/failures": 1.0,
            "judge/overturned": 2.0,
        }
        | {"judge/latency_p50_s": 0.2 * s, "judge/latency_p95_s": 0.5 * s}
        for s in (1, 2)
    ]
    asked.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pngs = plot_curves([asked], tmp_path / "a")
    assert sorted(p.stem for p in pngs) == ["judge_calls", "judge_latency", "reward"]
    figures = json.loads((tmp_path / "a" / "curves.json").read_text())["figures"]
    calls = {s["label"]: s["values"] for s in figures["judge_calls"]["series"]}
    assert calls == {
        "asked · calls": [4.0, 8.0],
        "asked · failed": [1.0, 1.0],
        "asked · overturned the rules": [2.0, 2.0],
    }
    latency = {s["label"]: s["values"] for s in figures["judge_latency"]["series"]}
    assert latency == {"asked · p50": pytest.approx([0.2, 0.4]), "asked · p95": pytest.approx([0.5, 1.0])}

    never = tmp_path / "never" / "metrics.jsonl"
    never.parent.mkdir()
    never.write_text(
        "".join(json.dumps({"step": s, "reward_mean": 0.1, "judge/calls": 0.0}) + "\n" for s in (1, 2))
    )
    assert [p.stem for p in plot_curves([never], tmp_path / "n")] == ["reward"]
