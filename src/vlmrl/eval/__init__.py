"""Evaluation: benchmarks -> generation -> grading (same reward code) -> tables.

Public API: `vlmrl.eval.text.evaluate` (text benchmarks and row files), `vlmrl.eval.mm.evaluate_mm`
(lmms-eval), `vlmrl.eval.metrics.pass_at_k`, `vlmrl.eval.generation.make_backend`,
`vlmrl.eval.results.write_result/read_result`, `vlmrl.eval.benchmarks` (one file per benchmark).
"""
