"""Evaluation: benchmarks -> generation -> grading (same reward code) -> tables."""
