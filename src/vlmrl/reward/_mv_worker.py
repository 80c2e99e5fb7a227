"""A math-verify worker process: reads batches of checks on stdin, writes one JSON reply line per check.

Started by `vlmrl.reward.pool.MathVerifyPool` as a plain script (it imports nothing from vlmrl; it loads
the stdlib-only `mathtext.py` beside it by path),
so the parent can kill it at any moment when a check overruns its bound. math-verify's own
timeouts are off (`None`): they use `signal.alarm`, and the parent's kill is the bound.

Request line: {"items": [{"pred": answer text, "golds": [ground truths]}, ...]}; one reply line per
item, in order, as soon as it is checked: {"status": equal | unequal | unparsed | error} (so the
parent times each check on its own). The prediction goes through math-verify's extraction as written (boxed first,
then "final answer is", then the last expression). A ground truth that carries no math delimiters
is read as a number when it is one ("1,22" is 1.22, as math-verify reads it) and else as one
boxed expression.
"""

import functools
import importlib.util
import json
import re
import sys
from pathlib import Path


def _load_mathtext():
    """`mathtext.py` from beside this file, loaded by path (no vlmrl import, no sys.path change)."""
    spec = importlib.util.spec_from_file_location("_vlmrl_mathtext", Path(__file__).with_name("mathtext.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_mt = _load_mathtext()
TEXT_COMMANDS, UNIT_POWER, box_spans, decimal = _mt.TEXT_COMMANDS, _mt.UNIT_POWER, _mt.box_spans, _mt.decimal

_DELIMS_RE = re.compile(r"\$|\\\(|\\\[|\\boxed|\\fbox")
# A number as math-verify's expression reader takes it: thousands separators ("1,000", "1 000"),
# a decimal comma only where it cannot be a list ("1,22", "0,111"; "-2,1" is the list -2, 1).
_NUMBER_RE = re.compile(r"^(?:[-+]?" + decimal(" ,") + r"|\d+,\d{2,}|0,\d+)\s*%?$")
_JOINER_NOISE_RE = re.compile(r"\$|\\[()\[\]]|\\quad|\\qquad|\\text\s*\{[^{}]*\}|[\s.]")
_JOINER_RE = re.compile(r"\band\b|[,;]")
_BREAKER_RE = re.compile(r"\b(?:or|but|not|no|thus)\b")
# A unit written as text after a number ("\\frac{1}{3} \\text{meters}", "15\\mbox{ cm}^2"): dropped,
# since math-verify's own unit removal is off (it drops single-letter variables too).
_TEXT_UNIT_RE = re.compile(
    r"(?<=[\d}])\s*\\(?:"
    + TEXT_COMMANDS
    + r")\s*\{\s*(?:\\,|\\ |\s)*(?!(?:and|or|for)\b)[A-Za-z]{2,}[A-Za-z ]*\}"
    + UNIT_POWER
)


def _gold_boxes(text):
    """A ground truth with several boxes: the last box and those joined to it by a list separator
    ("\\boxed{1} papers and \\boxed{2} bins", "\\boxed{1}\\boxed{2}"), as one boxed list."""
    boxes = box_spans(text)
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


def install_two_stage_parsing():
    """latex2sympy's ANTLR parser in ANTLR's two-stage mode: SLL prediction first, full LL only when
    SLL reports a syntax error. ANTLR guarantees that an SLL parse which succeeds is the tree LL
    builds, so no verdict changes; SLL skips the full-context predictions that are most of the parse
    time. Returns a function that undoes it (None when latex2sympy has no such hook: left as is)."""
    try:
        from antlr4.atn.PredictionMode import PredictionMode
        from latex2sympy2_extended import latex2sympy2
    except ImportError:
        return None
    original = getattr(latex2sympy2._Latex2Sympy, "create_parser", None)
    if original is None:
        return None

    def create_parser(self, latex_str):
        parser = original(self, latex_str)
        parser._interp.predictionMode = PredictionMode.SLL

        def math():
            try:
                return type(parser).math(parser)
            except Exception:  # a syntax error under SLL: parse again, with full LL, from scratch
                return original(self, latex_str).math()

        parser.math = math
        return parser

    latex2sympy2._Latex2Sympy.create_parser = create_parser

    def undo():
        latex2sympy2._Latex2Sympy.create_parser = original

    return undo


def install_quick_unequal():
    """math-verify's last resort, `sympy_symbolic_eq(a, b)` (is `simplify(a - b)` zero?), answers
    False at once when `a - b` has a value clearly away from zero: as it stands (a number), or at a
    point (exact rationals put for its symbols). `simplify` keeps an expression's value, so it can
    never make such a difference zero: no verdict changes, and a wrong answer no longer costs a
    `simplify` (most of a wrong answer's check). Symbols that carry assumptions a rational point
    might break (integer, ...) and values that are not finite are left to `simplify`.
    Returns a function that undoes it (None when math-verify has no such hook)."""
    try:
        import math_verify.grader as grader
        from sympy import Expr, Float, Rational
    except ImportError:
        return None
    original = getattr(grader, "sympy_symbolic_eq", None)
    if original is None:
        return None
    point = [Rational(7, 3), Rational(11, 5), Rational(13, 7), Rational(17, 11), Rational(19, 13)]
    # What those points are: a symbol may assume these (True), and must not deny them (False).
    holds = {
        "commutative",
        "complex",
        "real",
        "extended_real",
        "finite",
        "hermitian",
        "positive",
        "nonnegative",
        "nonzero",
        "extended_positive",
        "extended_nonnegative",
        "extended_nonzero",
        "rational",
        "algebraic",
        "noninteger",
    }

    def fits(sym):
        facts = sym.assumptions0
        return all(k in holds for k, v in facts.items() if v) and not any(
            k in holds for k, v in facts.items() if v is False
        )

    def at_point(expr, values):
        value = expr.subs(values) if values else expr
        if not isinstance(value, Expr) or not value.is_number:
            raise ValueError("not a number there")
        return complex(value.evalf(30))

    def clearly_nonzero(a, b):
        if not isinstance(a, Expr) or not isinstance(b, Expr) or a.has(Float) or b.has(Float):
            return False
        diff = a - b
        symbols = sorted(diff.free_symbols | a.free_symbols | b.free_symbols, key=str)
        if len(symbols) > len(point) or not all(fits(s) for s in symbols):
            return False
        values = dict(zip(symbols, point, strict=False))
        d, x, y = at_point(diff, values), at_point(a, values), at_point(b, values)
        if any(v != v or abs(v) == float("inf") for v in (d, x, y)):
            return False
        # 30 digits: a difference 1e-9 of the sizes involved is no rounding error.
        return abs(d) > 1e-9 * (1 + abs(x) + abs(y))

    def sympy_symbolic_eq(a, b):
        try:
            if clearly_nonzero(a, b):
                return False
        except Exception:
            pass
        return original(a, b)

    grader.sympy_symbolic_eq = sympy_symbolic_eq

    def undo():
        grader.sympy_symbolic_eq = original

    return undo


# Checked before "ready", so the first checks of a worker do not pay sympy's lazy imports and
# caches (the first `simplify` of a process takes ~0.5 s): numbers, roots, a polynomial, a tuple,
# an interval, a set, a matrix, an equation.
_WARM_UP = [
    ("\\frac{1}{2}", "$x^2 + \\sqrt{2}, [0, 1)$ and 0.5"),
    ("\\frac{\\sqrt{6}}{8}", "$\\frac{6}{8}$"),
    ("x^2+2x+1", "$(x+1)^2$"),
    ("(3, -1)", "$\\left( 3, -1 \\right)$"),
    ("[2, 5)", "$(2,5]$"),
    ("\\{1, 2\\}", "$\\{2, 1\\}$"),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$",
    ),
    ("x = 3", "$3$"),
]


def make_check():
    """`check(ground truths, answer text) -> equal | unequal | unparsed | error`, math-verify's
    reading and comparison as this worker sets them up (each ground truth parsed once)."""
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

    def check(gold_texts, pred_text):
        try:
            pred = read(pred_text, latex_first)
            golds = [g for g in (read_gold(g) for g in gold_texts) if g]  # a group shares its golds
            if not pred or not golds:
                return "unparsed"
            # gold first: math-verify's verify is not symmetric.
            return "equal" if any(verify(g, pred, timeout_seconds=None) for g in golds) else "unequal"
        except MemoryError:
            return "error"
        except Exception:
            return "error"

    return check


def main() -> None:
    _limit_memory()
    install_two_stage_parsing()
    install_quick_unequal()
    check = make_check()
    # The first parse of a process builds latex2sympy's grammar and imports half of sympy (seconds
    # on a busy host): done here, before "ready", so no check pays for it within its bound.
    for gold, pred in _WARM_UP:
        check([gold], pred)
    check = make_check()  # the warm-up's ground truths leave the cache
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            items = json.loads(line)["items"]
        except Exception:
            items = None
        if not isinstance(items, list):
            out.write(json.dumps({"status": "error"}) + "\n")
            out.flush()
            continue
        for item in items:
            try:
                status = check(item["golds"], item["pred"])
            except Exception:
                status = "error"
            out.write(json.dumps({"status": status}) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
