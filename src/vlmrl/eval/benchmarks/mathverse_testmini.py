"""MathVerse testmini through lmms-eval 0.7.3 (`vlmrl eval mm`), scored by an LLM judge, in percent."""

from vlmrl.eval.benchmarks import LMMS, Benchmark, Column

# lmms-eval 0.7.3's gpt_eval_score is the mean of 0/1 judge verdicts: a fraction.
COLUMN = Column("mathverse_testmini", "MathVerse", metric="gpt_eval_score", scale=100.0)
BENCHMARK = Benchmark(
    "mathverse_testmini", "MathVerse testmini", LMMS, 40, columns=(COLUMN,), footnote="%", judged=True
)
