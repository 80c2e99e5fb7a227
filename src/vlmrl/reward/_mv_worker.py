"""A math-verify worker process: reads JSON requests on stdin, writes one JSON reply line each.

Started by `vlmrl.reward.pool.MathVerifyPool` as a plain script (it imports nothing from vlmrl),
so the parent can kill it at any moment when a check overruns its bound. math-verify's own
timeouts are off (`None`): they use `signal.alarm`, and the parent's kill is the bound.

Request: {"pred": answer text, "golds": [ground truths]}; reply: {"status": equal | unequal |
unparsed | error}. The prediction goes through math-verify's extraction as written (boxed first,
then "final answer is", then the last expression). A ground truth that carries no math delimiters
is read as a number when it is one ("1,22" is 1.22, as math-verify reads it) and else as one
boxed expression.
"""

import contextlib
import functools
import json
import re
import sys

_DELIMS_RE = re.compile(r"\$|\\\(|\\\[|\\boxed|\\fbox")
# A number as math-verify's expression reader takes it: thousands separators ("1,000", "1 000"),
# a decimal comma only where it cannot be a list ("1,22", "0,111"; "-2,1" is the list -2, 1).
_NUMBER_RE = re.compile(r"^(?:[-+]?(?:[1-9]\d{0,2}(?:[ ,]\d{3})+|\d+)(?:\.\d+)?|\d+,\d{2,}|0,\d+)\s*%?$")
_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_JOINER_NOISE_RE = re.compile(r"\$|\\[()\[\]]|\\quad|\\qquad|\\text\s*\{[^{}]*\}|[\s.]")
_JOINER_RE = re.compile(r"\band\b|[,;]")
_BREAKER_RE = re.compile(r"\b(?:or|but|not|no|thus)\b")
# A unit written as text after a number ("\\frac{1}{3} \\text{meters}", "15\\mbox{ cm}^2"): dropped,
# since math-verify's own unit removal is off (it drops single-letter variables too).
_TEXT_UNIT_RE = re.compile(
    r"(?<=[\d}])\s*\\(?:text|textnormal|textbf|mbox|mathrm|textrm|rm)\s*\{\s*(?:\\,|\\ |\s)*(?!(?:and|or|for)\b)[A-Za-z]{2,}[A-Za-z ]*\}"
    r"(?:\s*\^\s*\{?[23]\}?)?"
)


def _boxes(text):
    """(start, end, content) of each top-level box."""
    out, pos = [], 0
    while True:
        m = _BOX_RE.search(text, pos)
        if not m:
            return out
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        if depth:
            return out
        out.append((m.start(), i + 1, text[m.end() : i]))
        pos = i + 1


def _gold_boxes(text):
    """A ground truth with several boxes: the last box and those joined to it by a list separator
    ("\\boxed{1} papers and \\boxed{2} bins", "\\boxed{1}\\boxed{2}"), as one boxed list."""
    boxes = _boxes(text)
    if len(boxes) < 2:
        return None
    kept = [boxes[-1][2]]
    for left, right in zip(boxes[-2::-1], boxes[:0:-1], strict=True):
        between = text[left[1] : right[0]]
        words = _JOINER_NOISE_RE.sub("", between)
        joined = not re.search(r"[A-Za-z0-9]", words) or (
            len(between) < 70 and _JOINER_RE.search(between) and not _BREAKER_RE.search(between)
        )
        if not joined:
            break
        kept.insert(0, left[2])
    return "\\boxed{" + ", ".join(kept) + "}"


def _limit_memory() -> None:
    # Huge exponents make sympy allocate without bound; a MemoryError here beats a swapping host.
    try:
        import resource

        limit = 4 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    _limit_memory()
    from latex2sympy2_extended.math_normalization import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # math-verify's own normalisation, less its unit removal, which drops single letters ("3m" -> 3,
    # "2h" -> 2): a unit written as a word still goes ("\\text{ miles}", "5 cm").
    normalization = NormalizationConfig(
        basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
    )
    latex = LatexExtractionConfig(boxed_match_priority=0, normalization_config=normalization)
    latex_first = [latex, ExprExtractionConfig()]
    number_only = [ExprExtractionConfig()]

    def read(text, configs):
        text = _TEXT_UNIT_RE.sub("", text)
        try:
            return parse(text, extraction_config=configs, parsing_timeout=None)
        except Exception:
            return []

    @functools.lru_cache(maxsize=4096)
    def read_gold(gold):
        text = gold.strip()
        joined = _gold_boxes(text)
        if joined:
            return read(joined, latex_first)
        if _DELIMS_RE.search(text):
            return read(text, latex_first)
        number = text.replace("\\%", "%")
        if _NUMBER_RE.match(number):
            parsed = read(number, number_only)
            if parsed:
                return parsed
        return read("\\boxed{" + text + "}", latex_first) or read("$" + text + "$", latex_first)

    # The first parse of a process builds latex2sympy's grammar and imports half of sympy (seconds
    # on a busy host): done here, before "ready", so no check pays for it within its bound.
    with contextlib.suppress(Exception):
        verify(read_gold("\\frac{1}{2}"), read("$x^2 + \\sqrt{2}, [0, 1)$ and 0.5", latex_first))
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            pred = read(req["pred"], latex_first)
            golds = [g for g in (read_gold(g) for g in req["golds"]) if g]  # a group shares its golds
            if not pred or not golds:
                status = "unparsed"
            else:
                # gold first: math-verify's verify is not symmetric.
                equal = any(verify(g, pred, timeout_seconds=None) for g in golds)
                status = "equal" if equal else "unequal"
        except MemoryError:
            status = "error"
        except Exception:
            status = "error"
        out.write(json.dumps({"status": status}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
