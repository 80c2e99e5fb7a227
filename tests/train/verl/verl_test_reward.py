"""A reward veRL loads by path in the end-to-end tests: it varies with every response, except on rows
whose ground truth is `evict`, which score alike so that dynamic sampling (filter on `acc`) evicts them.

The tiny untrained model fails vlmrl's format gate on every response, so the real reward would give
GRPO no signal; this one gives every other group distinct scores, hence non-zero advantages.
"""

import zlib


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    answers = list(ground_truth) if not isinstance(ground_truth, str) else [ground_truth]
    if "evict" in answers:
        return {"score": 0.0, "acc": 0.0}
    value = (zlib.crc32(solution_str.encode("utf-8")) % 1000) / 1000.0
    return {"score": value, "acc": value}
