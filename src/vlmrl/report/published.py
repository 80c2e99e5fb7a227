"""The seed's published numbers (Qwen2.5-VL-7B-Instruct before and after RL), in our result columns.

Text: Pass@1 over 8 samples at temperature 0.6, graded by R1-Evaluation (the final answer anywhere in
the response, no format gate). Multimodal: lmms-eval 0.3.5 (MathVerse/MathVista judged by the GPT
model its tasks named). The seed's multimodal table labels MME's two columns "cognition, perception"
in that order, but its first number (1484.1 for the base model) exceeds cognition's maximum of 800:
MME perception has 10 subtasks (max 2000) and cognition 4 (max 800). The labels were swapped, so the
first number is perception; they are stored here under the right columns.
"""

from __future__ import annotations

PUBLISHED = "published"

#: model -> {column: value}; the seed's row names.
SEED_ROWS: dict[str, dict[str, float]] = {
    "Qwen2.5-VL-7B-Instruct": {
        "aime24": 5.2,
        "math500": 64.6,
        "gpqa_diamond": 30.7,
        "mathverse_testmini": 46.7,
        "mathvista_testmini_format": 56.0,
        "mme_perception": 1484.1,
        "mme_cognition": 703.6,
        "mmstar": 62.9,
    },
    "Qwen2.5-VL-7B-Instruct-RL-Text": {
        "aime24": 6.9,
        "math500": 68.0,
        "gpqa_diamond": 35.5,
        "mathverse_testmini": 51.4,
        "mathvista_testmini_format": 68.0,
        "mme_perception": 1573.7,
        "mme_cognition": 690.0,
        "mmstar": 64.6,
    },
    "Qwen2.5-VL-7B-Instruct-RL-Multimodal": {
        "aime24": 5.0,
        "math500": 66.3,
        "gpqa_diamond": 33.7,
        "mathverse_testmini": 51.5,
        "mathvista_testmini_format": 70.2,
        "mme_perception": 1585.9,
        "mme_cognition": 454.0,
        "mmstar": 62.5,
    },
    "Qwen2.5-VL-7B-Instruct-RL-Text-Multimodal": {
        "aime24": 5.8,
        "math500": 67.1,
        "gpqa_diamond": 31.3,
        "mathverse_testmini": 51.8,
        "mathvista_testmini_format": 71.4,
        "mme_perception": 1603.5,
        "mme_cognition": 606.4,
        "mmstar": 64.5,
    },
}

#: The seed's two tables: text, then multimodal (MME perception before cognition: the seed's order of
#: the numbers, under the right labels).
TEXT_TABLE = ("aime24", "math500", "gpqa_diamond")
MM_TABLE = ("mathverse_testmini", "mathvista_testmini_format", "mme_perception", "mme_cognition", "mmstar")

MME_FOOTNOTE = (
    "MME: the seed's table labels its columns cognition, perception (1484.1, 703.6 for the base model), "
    "swapped: perception has 10 subtasks (max 2000), cognition 4 (max 800); shown here under the right labels."
)
PUBLISHED_FOOTNOTE = (
    "published = the seed's numbers: text by R1-Evaluation (final answer anywhere in the response, no "
    "format gate: compare with `final-answer`), multimodal by lmms-eval 0.3.5 with a GPT judge."
)
