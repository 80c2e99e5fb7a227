"""MathVista testmini (format variant) through lmms-eval 0.7.3 (`vlmrl eval mm`), LLM-judged, percent."""

from vlmrl.eval.benchmarks import LMMS, Benchmark, Column

# lmms-eval 0.7.3 renamed the metric (0.3.5: gpt_eval_score); a percent, None when 0.
COLUMN = Column("mathvista_testmini_format", "MathVista", metric="llm_as_judge_eval")
BENCHMARK = Benchmark(
    "mathvista_testmini_format", "MathVista testmini", LMMS, 50, columns=(COLUMN,), footnote="%", judged=True
)
