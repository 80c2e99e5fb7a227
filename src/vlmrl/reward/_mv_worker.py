"""A math-verify worker process: reads JSON requests on stdin, writes one JSON reply line each.

Started by `vlmrl.reward.rule.MathVerifyPool` as a plain script (it imports nothing from vlmrl),
so the parent can kill it at any moment when a check overruns its bound.
"""

import json
import sys


def _limit_memory() -> None:
    # Huge exponents make sympy allocate without bound; a MemoryError here beats a swapping host.
    try:
        import resource

        limit = 4 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _parse(text, parse, configs, timeout_s):
    for candidate in ("\\boxed{" + text + "}", "$" + text + "$", text):
        try:
            parsed = parse(candidate, extraction_config=configs, parsing_timeout=timeout_s)
        except Exception:
            parsed = []
        if parsed:
            return parsed
    return []


def main() -> None:
    _limit_memory()
    from latex2sympy2_extended.math_normalization import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # No unit removal here: math-verify's drops single letters ("3m" -> 3, "n + m" -> "n +");
    # vlmrl's own clean-up strips units, and only from a prediction whose ground truth is a number.
    normalization = NormalizationConfig(
        basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
    )
    configs = [LatexExtractionConfig(normalization_config=normalization), ExprExtractionConfig()]
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            timeout_s = max(1, int(req.get("timeout_s", 5)))
            pred = _parse(req["pred"], parse, configs, timeout_s)
            golds = [_parse(g, parse, configs, timeout_s) for g in req["golds"]]
            golds = [g for g in golds if g]
            if not pred or not golds:
                status = "unparsed"
            else:
                status = "unequal"
                for gold in golds:
                    # gold first: math-verify's verify is not symmetric.
                    if verify(gold, pred, timeout_seconds=timeout_s):
                        status = "equal"
                        break
        except MemoryError:
            status = "error"
        except Exception as exc:  # math-verify's own TimeoutException lands here too
            status = "timeout" if type(exc).__name__ == "TimeoutException" else "error"
        out.write(json.dumps({"status": status}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
