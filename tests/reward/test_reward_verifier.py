"""The verifier client over real loopback HTTP against a scripted OpenAI-compatible judge."""

from __future__ import annotations

import asyncio
import time

import pytest

from vlmrl.reward import compute_score, score_batch
from vlmrl.reward import verifier as vf
from vlmrl.reward.score import compute_score_async
from vlmrl.testing.scripted_judge import Script, ScriptedJudge

QUESTION = "How many apples are left?"


def wrap(answer: str) -> str:
    return f"<think>\ncounting\n</think>\n<answer>\n{answer}\n</answer>"


def kw(judge: ScriptedJudge, **extra):
    return {
        "verifier_url": judge.url,
        "verifier_model": judge.model_name,
        "verifier_timeout_s": 2.0,
        "verifier_max_retries": 1,
        "verifier_concurrency": 8,
        **extra,
    }


INFO = {"question": QUESTION}


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    monkeypatch.delenv("REWARD_MODEL_URL", raising=False)
    monkeypatch.delenv("REWARD_MODEL_NAME", raising=False)
    vf.reset_state()
    yield
    vf.reset_state()


def test_parse_reply():
    assert vf.parse_reply("Correct") == "correct"
    assert vf.parse_reply("  INCORRECT \n") == "incorrect"
    assert vf.parse_reply("[Correct]") == "correct"
    assert vf.parse_reply("Correct.") == "correct"
    assert vf.parse_reply("The answer is correct") is None
    assert vf.parse_reply("") is None
    assert vf.parse_reply(None) is None


def test_prompt_is_xverify_format_and_braces_survive():
    prompt = vf.build_prompt(vf.XVERIFY_PROMPT, "Find {x}.", "\\frac{1}{2}", "0.5")
    assert 'Question: """Find {x}."""' in prompt
    assert 'Output sentence: """\\frac{1}{2}"""' in prompt
    assert prompt.endswith("Correct answer: 0.5\n\nJudgement:\n")


def test_verifier_decides_when_rules_cannot():
    with ScriptedJudge() as judge:
        # "five apples" vs "5": the rules cannot compare words with numbers; the judge can.
        right = compute_score("s", wrap("five apples (5)"), ["five"], INFO, **kw(judge))
        wrong = compute_score("s", wrap("six apples"), ["five"], INFO, **kw(judge))
        assert judge.script.prompts and QUESTION in judge.script.prompts[0]
    assert (right["acc"], right["verdict"], right["verifier_error"]) == (1, "verifier", 0)
    assert (wrong["acc"], wrong["verdict"], wrong["score"]) == (0, "verifier", -1.0)
    # Both were put to the judge; only the right one changed what the rules gave (wrong, 0).
    assert (right["verifier_called"], right["verifier_overturned"]) == (1, 1)
    assert (wrong["verifier_called"], wrong["verifier_overturned"]) == (1, 0)


def test_rule_decided_answers_never_reach_the_verifier():
    with ScriptedJudge() as judge:
        assert compute_score("s", wrap("\\boxed{5}"), ["5"], INFO, **kw(judge))["verdict"] == "rule"
        assert compute_score("s", wrap("4"), ["5"], INFO, **kw(judge))["verdict"] == "rule"
        hedged = compute_score("s", wrap("4 or 5"), ["5"], INFO, **kw(judge))
        assert hedged["verdict"] == "rule"
        assert (hedged["verifier_called"], hedged["verifier_latency_s"]) == (0, 0.0)
        assert judge.script.requests == 0


@pytest.mark.parametrize("mode", ["error500", "drop", "garbage"])
def test_outage_keeps_the_rule_verdict(mode):
    with ScriptedJudge(Script(mode=mode)) as judge:
        # A correct answer is decided by the rules and never punished, whatever the judge does.
        correct = compute_score("s", wrap("\\frac{1}{2}"), ["0.5"], INFO, **kw(judge))
        assert (correct["acc"], correct["score"], correct["verdict"]) == (1, 1.0, "rule")
        # Undecided by rules: the verifier fails, the (tentative) rule verdict stands and is flagged.
        result = compute_score("s", wrap("x^2"), ["x^3"], INFO, **kw(judge))
        assert result["verifier_error"] == 1
        assert result["verdict"] == "rule" and result["acc"] == 0
        assert (result["verifier_called"], result["verifier_overturned"]) == (1, 0)
        nobody = compute_score("s", wrap("five apples"), ["5 apples"], INFO, **kw(judge))
        assert nobody["verifier_error"] == 1 and nobody["verdict"] in ("none", "rule")
        assert judge.script.requests >= 2  # retried


def test_retry_recovers_from_transient_500s():
    with ScriptedJudge(Script(fail_first=1)) as judge:
        result = compute_score("s", wrap("five"), ["five apples"], INFO, **kw(judge, verifier_max_retries=2))
        # substring judge: "five apples" is not in "five" -> Incorrect, but decided by the verifier.
        assert (result["verdict"], result["verifier_error"]) == ("verifier", 0)
        assert judge.script.requests == 2


def test_slow_verifier_times_out():
    with ScriptedJudge(Script(delay_s=20.0)) as judge:
        start = time.monotonic()
        result = compute_score(
            "s", wrap("five"), ["5"], INFO, **kw(judge, verifier_timeout_s=0.3, verifier_max_retries=1)
        )
        elapsed = time.monotonic() - start
    assert result["verifier_error"] == 1 and result["acc"] == 0
    assert elapsed < 20.0  # gave up on its own timeout, did not wait for the server's reply


def test_undecided_reply_is_not_an_error():
    with ScriptedJudge(Script(mode="undecided")) as judge:
        result = compute_score("s", wrap("five"), ["5"], INFO, **kw(judge))
    assert result["verifier_error"] == 0 and result["verdict"] == "none" and result["acc"] == 0


def test_circuit_breaker_stops_calling_a_dead_verifier():
    with ScriptedJudge(Script(mode="error500")) as judge:
        settings = kw(judge, verifier_max_retries=0)
        for i in range(vf.CIRCUIT_FAILURES):
            compute_score("s", wrap(f"y^{i + 2}"), ["x"], INFO, **settings)
        calls = judge.script.requests
        assert vf.breaker_for(judge.url).is_open
        result = compute_score("s", wrap("y^99"), ["x"], INFO, **settings)
        assert result["verifier_error"] == 1
        assert judge.script.requests == calls  # short-circuited, no request sent


def test_batch_dedups_identical_requests_and_caches_across_batches():
    with ScriptedJudge(Script(delay_s=0.05)) as judge:
        items = [{"solution_str": wrap("five"), "ground_truth": ["5"], "extra_info": INFO}] * 20
        items += [{"solution_str": wrap("six"), "ground_truth": ["5"], "extra_info": INFO}] * 5
        first = score_batch(items, **kw(judge))
        assert judge.script.requests == 2
        assert all(r["verdict"] == "verifier" for r in first)
        # every response was put to the judge; the two real requests waited the scripted 0.05 s
        assert all(r["verifier_called"] == 1 for r in first)
        assert max(r["verifier_latency_s"] for r in first) >= 0.05
        second = score_batch(items, **kw(judge))
        assert judge.script.requests == 2  # served from the LRU cache

        def timeless(results):
            return [{k: v for k, v in r.items() if k != "verifier_latency_s"} for r in results]

        assert timeless(second) == timeless(first)


def test_batch_calls_run_concurrently_within_the_limit():
    with ScriptedJudge(Script(delay_s=0.2)) as judge:
        items = [
            {"solution_str": wrap(f"apples number {i}"), "ground_truth": ["x"], "extra_info": INFO}
            for i in range(24)
        ]
        results = score_batch(items, **kw(judge, verifier_concurrency=6))
    assert len(results) == 24 and all(r["verdict"] == "verifier" for r in results)
    assert judge.script.requests == 24
    assert 1 < judge.max_in_flight <= 6


def test_async_variant_survives_event_loop_changes():
    """veRL's reward-loop workers each run their own loop; a client must never cross loops."""
    with ScriptedJudge() as judge:

        async def run(answer: str):
            try:
                return await asyncio.gather(
                    *(compute_score_async("s", wrap(answer), ["five"], INFO, **kw(judge)) for _ in range(3))
                )
            finally:
                await vf.close_clients()

        first = asyncio.run(run("five apples"))
        second = asyncio.run(run("no apples"))  # a new loop: a new pooled client
    assert [r["verdict"] for r in first + second] == ["verifier"] * 6
    assert [r["acc"] for r in first] == [1, 1, 1]
    # identical concurrent requests shared one HTTP call
    assert judge.script.requests == 2


def _good_judge(prompt: str) -> str:
    """Right on the health probes: 3/4 is 0.75, 2/6 is not."""
    return "Correct" if "3}{4}" in prompt else "Incorrect"


def test_health_asks_the_served_model_to_judge():
    with ScriptedJudge(Script(judge=_good_judge), model_name="xverify-test") as judge:
        settings = vf.VerifierSettings(url=judge.url, model="xverify-test", timeout_s=5)
        report = asyncio.run(vf.health(settings))
        assert report.ok, report.checks
        # the listing, then one right and one wrong judgement, really sent to the model
        assert [ok for _, ok, _ in report.checks] == [True, True, True]
        assert judge.script.requests == 2 and "\\frac{3}{4}" in judge.script.prompts[0]


def test_health_fails_on_a_wrong_model_name_without_judging():
    with ScriptedJudge(model_name="xverify-test") as judge:
        report = asyncio.run(vf.health(vf.VerifierSettings(url=judge.url, model="other", timeout_s=5)))
        assert not report.ok and judge.script.requests == 0
    what, ok, seen = report.checks[-1]
    assert "'other'" in what and not ok and seen == "xverify-test"


@pytest.mark.parametrize("mode", ["error500", "garbage", "undecided"])
def test_health_fails_when_the_model_does_not_judge(mode):
    with ScriptedJudge(Script(mode=mode), model_name="m") as judge:
        report = asyncio.run(vf.health(vf.VerifierSettings(url=judge.url, model="m", timeout_s=5)))
    assert not report.ok
    assert report.checks[0][1] and not any(ok for _, ok, _ in report.checks[1:])


def test_health_fails_on_a_judge_that_always_says_correct():
    with ScriptedJudge(Script(judge=lambda prompt: "Correct"), model_name="m") as judge:
        report = asyncio.run(vf.health(vf.VerifierSettings(url=judge.url, model="m", timeout_s=5)))
    assert not report.ok and [ok for _, ok, _ in report.checks] == [True, True, False]


def test_health_of_an_unreachable_server_names_the_url():
    report = asyncio.run(vf.health(vf.VerifierSettings(url="http://127.0.0.1:9/v1", model="m", timeout_s=1)))
    assert not report.ok and "127.0.0.1:9/v1/models" in report.checks[0][0]
    what_went_wrong = report.checks[0][2]  # names the request that failed, not the chat URL
    assert "127.0.0.1:9/v1/models" in what_went_wrong and "chat/completions" not in what_went_wrong


def test_health_is_not_refused_by_an_open_circuit():
    with ScriptedJudge(Script(judge=_good_judge), model_name="m") as judge:
        breaker = vf.breaker_for(judge.url)
        for _ in range(vf.CIRCUIT_FAILURES):
            breaker.record(False)
        assert breaker.is_open
        assert asyncio.run(vf.health(vf.VerifierSettings(url=judge.url, model="m", timeout_s=5))).ok


def test_a_forked_child_forgets_the_parents_judgements():
    import os

    vf._cache.put("key", "correct")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, b"1" if vf._cache.get("key") is None and not vf._loop_states else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert vf._cache.get("key") == "correct"


@pytest.mark.parametrize("exc", [RuntimeError("client bug"), asyncio.CancelledError()])
def test_breaker_probe_that_raises_or_is_cancelled_does_not_stick_open(monkeypatch, exc):
    url = "http://127.0.0.1:9/v1"
    settings = vf.VerifierSettings(url=url, model="judge", max_retries=0)
    breaker = vf.CircuitBreaker(threshold=1, cooldown_s=0.0)
    vf._breakers[url] = breaker
    breaker.record(False)  # open; cooldown 0: the next call is a half-open probe
    assert breaker.is_open

    async def boom(*_args, **_kwargs):
        raise exc

    monkeypatch.setattr(vf, "_post_once", boom)

    async def probe() -> None:
        state = vf._loop_state(url, 4)
        with pytest.raises(type(exc)):
            await vf._judge_uncached(state, settings, "prompt")

    asyncio.run(probe())
    # The failed probe counted as a failure; a later probe is allowed, not refused forever.
    assert breaker.is_open
    assert breaker.allow()


def test_the_judge_reads_the_options_texts_when_the_question_does_not_list_them():
    info = {"question": "Which gas do plants take in?", "answer_type": "choice"}
    info["choices"] = ["Oxygen", "Carbon dioxide", "Nitrogen", "Helium"]
    with ScriptedJudge() as judge:
        # An answer that names no option: only the judge can tell, and it sees the options.
        compute_score("s", wrap("the one animals breathe out"), ["B"], info, **kw(judge))
        prompt = judge.script.prompts[0]
    assert "(A) Oxygen\n(B) Carbon dioxide\n(C) Nitrogen\n(D) Helium" in prompt
