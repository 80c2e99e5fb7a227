"""MMStar through lmms-eval 0.7.3 (`vlmrl eval mm`), in percent."""

from vlmrl.eval.benchmarks import LMMS, Benchmark, Column

# lmms-eval's `average` is a fraction.
BENCHMARK = Benchmark(
    "mmstar",
    "MMStar",
    LMMS,
    70,
    columns=(Column("mmstar", "MMStar", metric="average", scale=100.0),),
    footnote="%",
)
