"""`vlmrl eval mm` runs the real lmms-eval 0.7.3 (its vLLM model, on CPU) with the tiny model on a
local copy of MME in the hub's layout, and its numbers reach `vlmrl report table`."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.eval.lmms_env import LMMS_EVAL_VERSION, find_lmms_python, probe

pytestmark = pytest.mark.slow

INSTRUCTION = "Think it through, then answer."
# If vLLM fell back to the model's own template instead of ours, rendering would raise this.
MODEL_OWN_TEMPLATE = (
    "{{ raise_exception('the model directory chat template was used, not vlmrl eval mm one') }}"
)
# Two questions per image, as MME pairs them; 2 perception and 2 cognition categories.
CATEGORIES = ("count", "existence", "numerical_calculation", "code_reasoning")


@pytest.fixture(scope="module")
def lmms_python() -> str:
    python = find_lmms_python()
    info = probe(python) if python else None
    if info is None or info.version != LMMS_EVAL_VERSION or info.vllm is None:
        why = (
            f"no lmms-eval {LMMS_EVAL_VERSION} venv with vLLM (found {info}); create it with `make lmms-env`"
        )
        if os.environ.get("VLMRL_REQUIRE_LMMS") == "1":  # `make test` builds it, so there it must exist
            pytest.fail(why)
        pytest.skip(why)
    return python


def write_mme_copy(root: Path) -> Path:
    """MME as its hub repo lays it out: data/test-*.parquet with an Image feature and its columns."""
    import datasets
    from PIL import Image

    rows: dict[str, list] = {k: [] for k in ("question_id", "image", "question", "answer", "category")}
    for i, category in enumerate(CATEGORIES):
        buf = io.BytesIO()
        Image.new("RGB", (56, 56), ("red", "blue", "green", "white")[i]).save(buf, "PNG")
        for answer in ("Yes", "No"):
            rows["question_id"].append(f"{category}/{i}.png")
            rows["image"].append({"bytes": buf.getvalue(), "path": None})
            rows["question"].append(f"Is the picture number {i} {answer.lower()}? Please answer yes or no.")
            rows["answer"].append(answer)
            rows["category"].append(category)
    features = datasets.Features(
        {
            "question_id": datasets.Value("string"),
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "category": datasets.Value("string"),
        }
    )
    (root / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        root / "data" / "test-00000-of-00001.parquet"
    )
    return root


def test_eval_mm_runs_lmms_eval_on_a_local_mme_copy(lmms_python, tiny_vlm_path, tmp_path, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(tiny_vlm_path, model)
    (model / "chat_template.jinja").write_text(MODEL_OWN_TEMPLATE)
    mme = write_mme_copy(tmp_path / "MME")
    for var, value in {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine in-process: one vLLM import fewer
    }.items():
        monkeypatch.setenv(var, value)
    out = tmp_path / "mm"
    args = ["eval", "mm", "--model", str(model), "--tasks", "mme", "--data", f"mme={mme}", "-o", str(out)]
    args += ["--lmms-python", lmms_python, "--instruction", INSTRUCTION, "--model-name", "tiny"]
    args += ["--max-new-tokens", "16", "--max-model-len", "1024", "--batch-size", "8"]
    for engine_arg in (
        "dtype=float32",
        "enforce_eager=True",
        'limit_mm_per_prompt={"image":1,"video":0}',
        'mm_processor_kwargs={"max_pixels":12544}',
    ):
        args += ["--model-arg", engine_arg]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output[-4000:]

    # lmms-eval wrote its own results and samples files under the output path.
    (results_file,) = (out / "lmms_eval").rglob("*_results.json")
    lmms = json.loads(results_file.read_text())
    assert lmms["results"]["vlmrl_local_mme"]["alias"] == "mme"
    assert lmms["n-samples"]["vlmrl_local_mme"]["effective"] == 8
    assert lmms["configs"]["vlmrl_local_mme"]["dataset_path"] == str(mme)
    assert f"chat_template={out.absolute() / 'chat_template.jinja'}" in lmms["config"]["model_args"]
    assert lmms["throughput"]["total_gen_tokens"] <= 8 * 16  # MME's 16-token cap held
    (samples_file,) = (out / "lmms_eval").rglob("*_samples_vlmrl_local_mme.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 8
    # The task's own prompt (lmms-eval's MME utils); our template adds the instruction when vLLM renders it.
    assert all(s["input"].endswith("\nAnswer the question using a single word or phrase.") for s in samples)
    assert INSTRUCTION in (out / "chat_template.jinja").read_text()

    ours = json.loads((out / "results.json").read_text())
    assert ours["model"] == "tiny"
    scores = ours["scores"]
    assert set(scores) == {"mme_cognition", "mme_perception"}
    assert 0 <= scores["mme_cognition"] <= 2 * 200 and 0 <= scores["mme_perception"] <= 2 * 200
    assert scores["mme_cognition"] == lmms["results"]["vlmrl_local_mme"]["mme_cognition_score,none"]

    # The numbers reach the report table, from our results.json and from lmms-eval's own file.
    for source in (out / "results.json", results_file):
        table = CliRunner().invoke(
            app, ["report", "table", f"tiny={source}", "--out", str(tmp_path / "t.md")]
        )
        assert table.exit_code == 0, table.output
        row = next(line for line in (tmp_path / "t.md").read_text().splitlines() if line.startswith("| tiny"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert f"{scores['mme_cognition']:.1f}" in cells and f"{scores['mme_perception']:.1f}" in cells


def test_lmms_venv_shares_torch_and_vllm_and_shadows_only_its_own_pins(lmms_python):
    import subprocess
    import sysconfig

    import torch

    code = (  # where each would be imported from, without importing the heavy ones
        "import importlib.util as u, json, filelock; "
        "print(json.dumps([u.find_spec('torch').origin, u.find_spec('vllm').origin, "
        "filelock.__version__, filelock.__file__]))"
    )
    proc = subprocess.run([lmms_python, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    torch_file, vllm_file, filelock_version, filelock_file = json.loads(proc.stdout.strip().splitlines()[-1])
    shared = Path(sysconfig.get_paths()["purelib"])
    assert Path(torch_file) == Path(torch.__file__) and Path(torch_file).is_relative_to(
        shared
    )  # no second torch
    assert Path(vllm_file).is_relative_to(shared)
    assert int(filelock_version.split(".")[0]) < 4  # lmms-eval 0.7.3 imports filelock._api
    assert not Path(filelock_file).is_relative_to(shared)
