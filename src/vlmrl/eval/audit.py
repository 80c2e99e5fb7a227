"""Rule versus judge: how often does an LLM judge agree with the rule check's verdicts?

For scored samples -- `vlmrl reward score` output, or the `samples.jsonl` of an `eval text` run --
a sample of the verdicts the rules decided, right and wrong alike (stratified: half from each side,
reproducible with a seed), goes to the judge through the reward's verifier client
(`vlmrl.reward.verifier.judge`: xVerify's prompt, retries, cache, circuit breaker). The agreement
matrix counts rule right/wrong against judge correct/incorrect, and failed or unparseable judge calls
separately (never counted as agreement or disagreement); every disagreeing sample is kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.eval.grading import after_reasoning
from vlmrl.reward import verifier as vf
from vlmrl.utils.io import iter_jsonl

DEFAULT_SAMPLE = 200
# xVerify's prompt cuts each field to its first MAX_FIELD_CHARS; a response's final answer is at its
# end, so a long response is sent as its tail.
_OUTPUT_TAIL = vf.MAX_FIELD_CHARS - 100


@dataclass(frozen=True)
class ScoredSample:
    """One rule verdict to audit: where it came from, what the judge is shown, what the rules said."""

    source: str  # file:line
    question: str
    output: str
    answer: str
    rule_right: bool
    pred: str = ""
    benchmark: str = ""


@dataclass
class AuditResult:
    judge: dict[str, str]
    population: dict[str, int]  # rule verdicts available: rule_right, rule_wrong
    sampled: dict[str, int]
    matrix: dict[str, int]  # rule_{right,wrong}_judge_{correct,incorrect,failed}
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # what failed judge calls said (first few)

    @property
    def judged(self) -> int:
        return sum(v for k, v in self.matrix.items() if not k.endswith("failed"))

    @property
    def agreement(self) -> float | None:
        """Percent of judged samples on which rule and judge agree (None when nothing was judged)."""
        agree = self.matrix["rule_right_judge_correct"] + self.matrix["rule_wrong_judge_incorrect"]
        return 100.0 * agree / self.judged if self.judged else None

    def counts(self) -> dict[str, Any]:
        """The numbers, as results.json and the audit file hold them."""
        return {
            "judge": self.judge,
            "population": self.population,
            "sampled": self.sampled,
            "matrix": self.matrix,
            "judged": self.judged,
            "judge_failed": self.matrix["rule_right_judge_failed"] + self.matrix["rule_wrong_judge_failed"],
            "agreement": self.agreement,
            "disagreements": len(self.disagreements),
        }


# ------------------------------------------------------------------ reading scored samples


def _user_text(prompt: Any) -> str:
    """The last user turn's text of a chat prompt (plain string, or the text parts)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, Mapping) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
                return str(content or "")
    return ""


def _output(response: str) -> str:
    text = after_reasoning(response).strip()
    return text if len(text) <= _OUTPUT_TAIL else "... " + text[-_OUTPUT_TAIL:]


def sample_from_record(record: Mapping[str, Any], where: str) -> ScoredSample | None:
    """A rule verdict of one scored record (None when the rules did not decide it: format, verifier,
    none). Reads `vlmrl reward score` lines and `eval text` samples.jsonl records."""
    if record.get("verdict") != "rule":
        return None
    response = record.get("response", record.get("solution_str"))
    golds = record.get("ground_truth")
    if not isinstance(response, str) or not isinstance(golds, list) or "acc" not in record:
        raise UserError(
            f"{where}: a scored record needs `response` (or `solution_str`), `ground_truth` (a list), `acc` "
            "and `verdict`; give `vlmrl reward score` output or an `eval text` samples.jsonl"
        )
    extra = record.get("extra_info") if isinstance(record.get("extra_info"), Mapping) else {}
    question = record.get("question") or extra.get("question") or _user_text(record.get("prompt"))
    return ScoredSample(
        source=where,
        question=str(question),
        output=_output(response),
        answer=" | ".join(str(g) for g in golds),
        rule_right=bool(int(record["acc"])),
        pred=str(record.get("extracted", record.get("pred", "")) or ""),
        benchmark=str(record.get("benchmark") or record.get("data_source") or ""),
    )


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(path.glob("*/samples.jsonl")) or sorted(path.glob("samples.jsonl"))
        if not found:
            raise UserError(
                f"{path}: no */samples.jsonl here; give an `eval text` --out-dir or a scored jsonl"
            )
        return found
    if not path.is_file():
        raise UserError(f"{path}: no such file or directory")
    return [path]


def read_scored(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[ScoredSample], int]:
    """(the rule verdicts of every record in `paths`, the number of records read)."""
    out: list[ScoredSample] = []
    total = 0
    for given in paths:
        for path in _files(Path(given)):
            for lineno, record in iter_jsonl(
                path, hint="give `vlmrl reward score` output or a samples.jsonl"
            ):
                total += 1
                if not isinstance(record, Mapping):
                    raise UserError(f"{path}:{lineno}: not a JSON object")
                sample = sample_from_record(record, f"{path}:{lineno}")
                if sample is not None:
                    out.append(sample)
    return out, total


def stratified(samples: Sequence[ScoredSample], n: int, seed: int = 0) -> list[ScoredSample]:
    """Up to `n` samples, half rule-right and half rule-wrong (the other side fills a short one)."""
    rng = random.Random(seed)
    right = [s for s in samples if s.rule_right]
    wrong = [s for s in samples if not s.rule_right]
    rng.shuffle(right)
    rng.shuffle(wrong)
    take_right = min(len(right), max(n // 2, n - len(wrong)))
    take_wrong = min(len(wrong), n - take_right)
    return right[:take_right] + wrong[:take_wrong]


# ------------------------------------------------------------------ asking the judge


def audit_samples(
    samples: Sequence[ScoredSample],
    settings: vf.VerifierSettings,
    *,
    n: int = DEFAULT_SAMPLE,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Ask the judge about a stratified sample of `samples` and count agreement."""
    if n < 1:
        raise UserError(f"--sample must be >= 1, got {n}")
    chosen = stratified(samples, n, seed)
    judgements = asyncio.run(_ask(chosen, settings, on_progress)) if chosen else []
    matrix = {
        f"rule_{r}_judge_{j}": 0 for r in ("right", "wrong") for j in ("correct", "incorrect", "failed")
    }
    result = AuditResult(
        judge={"url": settings.url, "model": settings.model},
        population={
            "rule_right": sum(s.rule_right for s in samples),
            "rule_wrong": sum(not s.rule_right for s in samples),
        },
        sampled={
            "rule_right": sum(s.rule_right for s in chosen),
            "rule_wrong": sum(not s.rule_right for s in chosen),
        },
        matrix=matrix,
    )
    for sample, judgement in zip(chosen, judgements, strict=True):
        rule = "right" if sample.rule_right else "wrong"
        if judgement.verdict is None:
            matrix[f"rule_{rule}_judge_failed"] += 1
            if len(result.failures) < 5:
                result.failures.append(f"{sample.source}: {judgement.detail or 'unparseable reply'}")
            continue
        matrix[f"rule_{rule}_judge_{judgement.verdict}"] += 1
        if (judgement.verdict == "correct") != sample.rule_right:
            result.disagreements.append(
                {
                    "source": sample.source,
                    "benchmark": sample.benchmark,
                    "rule": rule,
                    "judge": judgement.verdict,
                    "pred": sample.pred,
                    "answer": sample.answer,
                    "question": sample.question[:300],
                    "output_tail": sample.output[-300:],
                }
            )
    return result


async def _ask(
    chosen: Sequence[ScoredSample],
    settings: vf.VerifierSettings,
    on_progress: Callable[[int, int], None] | None,
) -> list[vf.Judgement]:
    done = 0

    async def one(sample: ScoredSample) -> vf.Judgement:
        nonlocal done
        judgement = await vf.judge(settings, sample.question, sample.output, sample.answer)
        done += 1
        if on_progress is not None:
            on_progress(done, len(chosen))
        return judgement

    try:
        return await asyncio.gather(*(one(s) for s in chosen))
    finally:
        await vf.close_clients()


def judge_settings(url: str | None, model: str | None, **kwargs: Any) -> vf.VerifierSettings:
    """The judge's client settings from the reward's own validation (`--verifier-url`, its name, or
    $REWARD_MODEL_URL / $REWARD_MODEL_NAME); a missing judge is one line saying what to pass."""
    from vlmrl.reward.settings import RewardSettings

    url = url or os.environ.get("REWARD_MODEL_URL") or None
    model = model or os.environ.get("REWARD_MODEL_NAME") or None
    if url and not model:  # the one model the server lists
        from vlmrl.utils.openai_api import sole_model

        key = kwargs.get("verifier_api_key") or os.environ.get("REWARD_MODEL_API_KEY") or None
        model = sole_model(
            url,
            api_key=key,
            timeout_setting="--timeout-s",
            name_option="--verifier-served-model-name",
            where=f"the judge at {url}",
        )
    given = {
        k: v for k, v in {"verifier_url": url, "verifier_model": model, **kwargs}.items() if v is not None
    }
    settings = RewardSettings.from_kwargs(**given).verifier
    if settings is None:
        raise UserError(
            "no judge: pass --verifier-url http://HOST:PORT/v1 and --verifier-served-model-name NAME "
            "(or set $REWARD_MODEL_URL and $REWARD_MODEL_NAME); `vlmrl verifier serve` serves one"
        )
    return settings


def write_audit(path: str | os.PathLike[str], result: AuditResult, inputs: Sequence[str]) -> Path:
    from vlmrl.utils.io import write_json_atomic

    doc = {
        "format": "vlmrl.eval.audit/v1",
        "inputs": list(inputs),
        **result.counts(),
        "failures": result.failures,
        "disagreeing_samples": result.disagreements,
    }
    return write_json_atomic(path, json.loads(json.dumps(doc, default=str)))
