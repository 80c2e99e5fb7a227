"""pass@k and benchmark summaries against values computed by hand."""

from __future__ import annotations

from math import comb

import pytest

from vlmrl.errors import UserError
from vlmrl.eval.metrics import default_ks, pass_at_k, summarize


def test_pass_at_k_hand_values():
    # c = 0: no sample is right, whatever k.
    assert pass_at_k(8, 0, 1) == 0.0
    assert pass_at_k(8, 0, 8) == 0.0
    # c = n: always right.
    assert pass_at_k(8, 8, 1) == 1.0
    assert pass_at_k(8, 8, 4) == 1.0
    # k = n: right iff at least one correct.
    assert pass_at_k(8, 1, 8) == 1.0
    assert pass_at_k(5, 0, 5) == 0.0
    # pass@1 = c / n.
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    # n=5, c=2, k=3: 1 - C(3,3)/C(5,3) = 1 - 1/10
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)
    # n - c < k: every k-subset holds a correct sample.
    assert pass_at_k(4, 3, 2) == 1.0


@pytest.mark.parametrize("n", [1, 3, 8, 16])
def test_pass_at_k_matches_binomial_formula(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = 1.0 - comb(n - c, k) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_rejects_impossible_arguments():
    for n, c, k in [(4, 5, 1), (4, 1, 5), (4, 1, 0), (0, 0, 1), (4, -1, 1)]:
        with pytest.raises(UserError, match="pass@k"):
            pass_at_k(n, c, k)


def test_default_ks():
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(6) == [1, 2, 4, 6]
    assert default_ks(1) == [1]


def _s(acc, fmt=1, tokens=10, finish="stop"):
    return {"acc": acc, "format_ok": fmt, "num_tokens": tokens, "finish_reason": finish}


def test_summarize_hand_computed():
    samples = {
        "p0": [_s(1), _s(1), _s(0, tokens=30), _s(0, fmt=0, tokens=40, finish="length")],  # c=2
        "p1": [_s(0), _s(0), _s(0), _s(0, fmt=0)],  # c=0
        "p2": [_s(1), _s(1), _s(1), _s(1)],  # c=4
    }
    m = summarize(samples)
    assert (m["num_problems"], m["n"], m["num_samples"]) == (3, 4, 12)
    assert m["pass@1"] == pytest.approx(100 * 6 / 12)
    # pass@2: p0 = 1 - C(2,2)/C(4,2) = 5/6; p1 = 0; p2 = 1.
    assert m["pass@2"] == pytest.approx(100 * (5 / 6 + 0 + 1) / 3)
    assert m["pass@4"] == pytest.approx(100 * 2 / 3)
    assert m["format_rate"] == pytest.approx(100 * 10 / 12)
    assert m["truncated_rate"] == pytest.approx(100 * 1 / 12)
    assert m["response_length"]["mean"] == pytest.approx((10 * 10 + 30 + 40) / 12)
    assert m["response_length"]["max"] == 40
    assert (m["problems_all_correct"], m["problems_none_correct"]) == (1, 1)


def test_summarize_uses_common_n():
    m = summarize({"a": [_s(1), _s(0), _s(1)], "b": [_s(1), _s(1)]})
    assert m["n"] == 2
    assert m["pass@1"] == pytest.approx(75.0)
