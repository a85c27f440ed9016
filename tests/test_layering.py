"""The package's import structure: no circle, and no import that runs back up the data path.

Every ``import`` / ``from ... import`` of the package is counted, including those inside functions. Each subpackage
has a level on the data path (DESIGN.md); a module may import its own subpackage and lower levels only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "landmark_afl"

# Lower levels never import higher ones. engine is the generic floor (atomic files, checkpoints, trainer): it knows
# no task and no data; the subpackages of one level do not import each other.
LEVELS = {
    "engine": 0,
    "io": 1,
    "protocols": 2,
    "codecs": 3,
    "data": 4,
    "models": 5,
    "losses": 5,
    "afl": 6,
    "metrics": 6,
    "tasks": 7,
    "recipes": 8,
    "evaluation": 9,
    "inference": 10,
    "detector": 11,
    "cli": 12,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in the file)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base, *[f"{base}.{a.name}" for a in node.names]]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LEVELS else None


def test_every_subpackage_has_a_level():
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert subpackages <= set(LEVELS), f"give these a level in LEVELS: {sorted(subpackages - set(LEVELS))}"


def test_no_import_runs_back_up_the_data_path():
    bad = []
    for module, deps in import_graph().items():
        own = _subpackage(module)
        if own is None:
            continue
        for dep in deps:
            other = _subpackage(dep)
            if other is not None and other != own and LEVELS[other] >= LEVELS[own]:
                bad.append(f"{module} -> {dep}")
    assert not bad, "imports against the data path:\n" + "\n".join(sorted(bad))


def test_no_import_circle():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # a package's __init__ importing its own submodules is not a circle of concern; any other is
    real = [c for c in cycles if not all(p.startswith(c.split(" -> ")[0].rsplit(".", 1)[0]) for p in c.split(" -> "))]
    assert not real, "import circles:\n" + "\n".join(real)


def test_importing_a_task_or_recipe_stays_light():
    code = (
        "import sys, landmark_afl.tasks.landmark, landmark_afl.recipes.landmarks, landmark_afl.recipes; "
        "heavy = [m for m in sys.modules if m.startswith(('landmark_afl.data.phantom', 'landmark_afl.data.convert', "
        "'landmark_afl.evaluation', 'landmark_afl.inference', 'landmark_afl.cli'))]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"importing a task loads {out}"
