"""Check the package's layering: no stage imports a later one, the engines' rooms stay apart, no cycles.

Run: `python tools/check_layers.py [SRC_DIR]` (exit 1 and one line per offence when the layout is broken).
Stages, in the order the data travels (each may import itself and anything earlier):
errors, utils, tiny, testing < data < reward < train < eval < report < demo < cli.
Inside `train/`, the engine rooms `train/verl/` and `train/trl/` never import each other, and the
shared modules beside them import an engine only inside a function (the dispatch in `train/launch.py`).
Cycles are looked for among module-level imports (the ones that run when a module is imported).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
RANK = {
    "errors": 0, "utils": 0, "tiny": 0, "testing": 0, "py": 0,
    "data": 1, "reward": 2, "train": 3, "eval": 4, "report": 5, "demo": 6, "cli": 7,
}  # fmt: skip
ENGINES = ("vlmrl.train.verl", "vlmrl.train.trl")


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported vlmrl module, at module level?, line) for each import of vlmrl in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name == "vlmrl" or name.startswith("vlmrl."):
                found.append((name, id(node) in top, node.lineno))
    return found


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "py"


def engine(module: str) -> str | None:
    return next((e for e in ENGINES if module == e or module.startswith(e + ".")), None)


def main(src: Path = SRC) -> int:
    files = sorted(src.rglob("*.py"))
    known = {module_name(p, src) for p in files}
    problems: list[str] = []
    graph: dict[str, set[str]] = {}
    for path in files:
        me = module_name(path, src)
        graph[me] = set()
        for target, module_level, line in imports(path):
            if target not in known:  # `from pkg import name` where name is not a module
                continue
            where = f"{path.relative_to(src.parent)}:{line}"
            if RANK.get(stage(target), 99) > RANK.get(stage(me), 99):
                problems.append(f"{where}: stage {stage(me)!r} imports the later stage {target}")
            mine, theirs = engine(me), engine(target)
            if theirs and mine and mine != theirs:
                problems.append(f"{where}: engine room {mine} imports the other engine {target}")
            if theirs and not mine and stage(me) == "train" and module_level:
                problems.append(f"{where}: shared train module imports engine {target} at module level")
            if module_level and target != me and not me.startswith(target + "."):
                graph[me].add(target)
    # cycles among module-level imports (a package's __init__ counts as its own module)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                problems.append("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    for line in problems:
        print(line)
    print(f"{len(files)} modules checked, {len(problems)} layering problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SRC))
