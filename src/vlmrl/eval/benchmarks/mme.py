"""MME through lmms-eval 0.7.3 (`vlmrl eval mm`): raw sums for its cognition and perception halves.

The seed's table swapped the labels: perception has 10 subtasks (max 2000), cognition 4 (max 800).
"""

from vlmrl.eval.benchmarks import LMMS, Benchmark, Column

BENCHMARK = Benchmark(
    "mme",
    "MME",
    LMMS,
    60,
    columns=(
        Column("mme_cognition", "MME cognition", "sum, max 800", metric="mme_cognition_score"),
        Column("mme_perception", "MME perception", "sum, max 2000", metric="mme_perception_score"),
    ),
    label="MME",
    footnote="lmms-eval sums (cognition max 800, perception max 2000)",
    notes=(
        "MME's task caps generation at 16 tokens, but lmms-eval 0.7 generates max(that, --max-new-tokens, "
        "default 4096): pass --max-new-tokens 16 for the seed's setting, under which a think-first template "
        "lowers MME's score"
    ),
)
