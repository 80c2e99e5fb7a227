"""GPQA-Diamond: 198 science questions, multiple choice graded on the letter (`vlmrl eval text`)."""

from vlmrl.eval.benchmarks import TEXT, Benchmark

BENCHMARK = Benchmark(
    "gpqa_diamond",
    "GPQA-Diamond",
    TEXT,
    30,
    "GPQA-D",
    # Published options are unshuffled (correct first): a seeded shuffle into A-D, answer = letter.
    options={"seed": 0},
    notes="198 questions, gated on the hub; options shuffled into A-D with seed 0",
)
