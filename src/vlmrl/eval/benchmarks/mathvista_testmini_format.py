"""MathVista testmini (format variant) through lmms-eval 0.3.5 (`vlmrl eval mm`), GPT-judged, percent."""

from vlmrl.eval.benchmarks import LMMS, Benchmark, Column

COLUMN = Column("mathvista_testmini_format", "MathVista", metric="gpt_eval_score")
BENCHMARK = Benchmark(
    "mathvista_testmini_format", "MathVista testmini", LMMS, 50, columns=(COLUMN,), footnote="%", judged=True
)
