"""AIME 2024: 30 problems with integer answers, Pass@1 over n samples (`vlmrl eval text`)."""

from vlmrl.eval.benchmarks import TEXT, Benchmark

BENCHMARK = Benchmark("aime24", "AIME 2024", TEXT, 10, "AIME24", notes="30 problems, integer answers")
