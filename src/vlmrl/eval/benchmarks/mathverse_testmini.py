"""MathVerse testmini through lmms-eval 0.3.5 (`vlmrl eval mm`), scored by a GPT judge, in percent."""

from vlmrl.eval.benchmarks import LMMS, Benchmark, Column

# lmms-eval's gpt_eval_score aggregates to percent already.
COLUMN = Column("mathverse_testmini", "MathVerse", metric="gpt_eval_score")
BENCHMARK = Benchmark(
    "mathverse_testmini", "MathVerse testmini", LMMS, 40, columns=(COLUMN,), footnote="%", judged=True
)
