"""Skywork-OR1-RL-Data (`Skywork/Skywork-OR1-RL-Data`, split `math`, ~105k rows): text math for RL.

Its ground truth is a string holding a Python-literal list of acceptable answers; every one is kept.
The question is the last user turn of its chat `prompt`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vlmrl.data.example import Example
from vlmrl.data.normalize import parse_answer_list
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import check_options, make_example, read_options, row_problem
from vlmrl.data.sources._io import SourceError, iter_records

HUB_ID = "Skywork/Skywork-OR1-RL-Data"
DATA_SOURCE = "skywork/or1-math"
# Trailing instructions some rows carry; our own instruction replaces them.
_TRAILERS = re.compile(
    r"\s*(Let's think step by step and output the final answer within \\boxed\{\}\.?|"
    r"Please reason step by step, and put your final answer within \\boxed\{\}\.?)\s*$"
)


def _question(prompt, where: str) -> str:
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, (list, tuple)) or not prompt:
        raise SourceError(f"{where}: `prompt` is not a list of chat messages")
    users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    message = users[-1] if users else prompt[-1]
    return str(message.get("content") or "") if isinstance(message, dict) else str(message)


def load(path: str | None = None, split: str = "math", **options) -> Iterator[Example]:
    check_options(DATA_SOURCE, options, ("strip_trailers",))
    strip = bool(options.get("strip_trailers", True))
    for i, row in enumerate(
        iter_records(path, HUB_ID, split, ("prompt", "reward_model"), **read_options(options))
    ):
        question = _question(row["prompt"], f"{path or HUB_ID} row {i}") if row["prompt"] is not None else ""
        if strip:
            question = _TRAILERS.sub("", question)
        reward_model = row["reward_model"] or {}
        answers = parse_answer_list(
            reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        )
        extra = row.get("extra_info") or {}
        meta = {"original_index": extra.get("index")} if isinstance(extra, dict) else {}
        if isinstance(extra, dict) and extra.get("model_difficulty"):
            meta["model_difficulty"] = extra["model_difficulty"]
        yield make_example(DATA_SOURCE, i, split, question, answers, meta=meta, problem=row_problem(row))


SOURCE = SourceInfo(
    "skywork_or1_math", HUB_ID, "math", False, "Skywork-OR1 math split, ~105k text problems (train)", load
)
