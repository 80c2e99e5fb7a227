"""MATH-500: 500 competition problems, Pass@1 over n samples (`vlmrl eval text`)."""

from vlmrl.eval.benchmarks import TEXT, Benchmark

BENCHMARK = Benchmark("math500", "MATH-500", TEXT, 20, "MATH-500", notes="500 problems")
