"""The package's architecture, checked from its source text (STYLE.md, "The shape").

Every check reads ``ivigmeta/**/*.py`` with :mod:`ast`; nothing of the package is imported, so a
module that fails to import cannot hide a violation, and the checks cost no start-up time.

What is checked:

* **no import cycle** among ivigmeta modules. Both module-level imports and imports inside
  functions count: a function-level import only defers a cycle, it does not remove the tangle a
  reader has to follow. Imports under ``if TYPE_CHECKING:`` are excluded (they never run).
  An edge goes to the module that defines the imported name: ``from ivigmeta.plots import common``
  is an edge to ``ivigmeta.plots.common``, ``from ivigmeta.plots import check_target`` one to
  ``ivigmeta.plots`` (its ``__init__``). The implicit import of parent packages is not an edge,
  so a package's ``__init__`` may re-export its submodules as long as they do not import it back;
* **nothing private crosses a module line**: a ``_name`` defined in one ivigmeta module is neither
  imported nor read as an attribute (``module._name``) by another (dunder names are not private);
* **third-party layers**: ``rich`` only in ``ivigmeta/render``; ``click`` only in ``ivigmeta/cli``;
  ``matplotlib`` only in ``ivigmeta/plots``, and lazily: importing any module outside the drawing
  modules, ``ivigmeta.plots`` itself included (the CLI imports it to check ``--plot`` paths), does
  not load matplotlib, so no command pays for it unless a figure is drawn; likewise importing
  ``ivigmeta.render`` does not load rich (JSON and CSV output never pay for it);
* **the one-way pipeline**: ``ivigmeta/core`` imports nothing of ``ivigmeta`` except
  ``ivigmeta.errors`` and ``ivigmeta.results``.

No violation is tolerated.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "ivigmeta"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

LAYERS = {
    # third-party package -> the ivigmeta packages allowed to import it
    "rich": ("ivigmeta.render",),
    "click": ("ivigmeta.cli",),
    "matplotlib": ("ivigmeta.plots",),
}
LAZY = {
    # third-party package -> the ivigmeta modules whose import may load it (module-level imports,
    # followed through ivigmeta modules); every other module loads it inside functions only
    "matplotlib": ("ivigmeta.plots.",),
    "rich": ("ivigmeta.render.",),  # not ivigmeta.render itself: JSON and CSV never pay for rich
}
CORE = "ivigmeta.core"
CORE_MAY_IMPORT = ("ivigmeta.core", "ivigmeta.errors", "ivigmeta.results")


# ---------------------------------------------------------------------------------------------
# Reading the source


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importing module sees it."""

    module: str  # the imported module (absolute), e.g. "ivigmeta.plots.common" or "rich.table"
    names: tuple[str, ...]  # the names of ``from module import a, b``; () for ``import module``
    line: int
    in_function: bool
    bound: tuple[str, ...] = ()  # the local name each import binds (``as`` names included)


@dataclass(frozen=True)
class Module:
    name: str
    rel: str  # the path relative to the package's parent, e.g. "ivigmeta/plots/forest.py"
    is_package: bool
    tree: ast.Module


def module_name(path: Path, root: Path = ROOT) -> tuple[str, bool]:
    """The dotted name of the module at ``path`` and whether it is a package ``__init__``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def load_modules(root: Path = ROOT) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name, is_package = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(root.parent).as_posix()
        modules[name] = Module(name, rel, is_package, tree)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``tree`` with whether it lies inside a function, skipping the bodies of
    ``if TYPE_CHECKING:`` (their ``else`` branch does run)."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:  # depth first, in source order
        node, in_function = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children: list[ast.AST] = list(node.orelse)
        else:
            if node is not tree:
                yield node, in_function
            children = list(ast.iter_child_nodes(node))
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        stack.extend((child, inner) for child in reversed(children))


def _absolute(module: Module, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


@functools.cache
def imports(module: Module) -> list[Import]:
    found = []
    for node, in_function in _walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                found.append(Import(alias.name, (), node.lineno, in_function, (bound,)))
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, node.level, node.module)
            names = tuple(alias.name for alias in node.names)
            bound = tuple(alias.asname or alias.name for alias in node.names)
            found.append(Import(target, names, node.lineno, in_function, bound))
    return found


def import_graph(
    modules: Mapping[str, Module], module_level_only: bool = False
) -> dict[str, dict[str, int]]:
    """``graph[a][b]`` = the first line of ``a`` importing ``b`` (both ivigmeta modules);
    ``module_level_only`` leaves out the imports inside functions."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, module in modules.items():
        for imp in imports(module):
            if module_level_only and imp.in_function:
                continue
            if imp.module != PACKAGE and not imp.module.startswith(PACKAGE + "."):
                continue
            targets = []
            if imp.names:
                subs = [f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in modules]
                targets.extend(subs)
                if len(subs) < len(imp.names):
                    targets.append(imp.module)
            else:
                targets.append(imp.module)
            for target in targets:
                if target in modules and target != name:
                    graph[name].setdefault(target, imp.line)
    return graph


# ---------------------------------------------------------------------------------------------
# The checks: each returns a sorted list of violations, one precise string each


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one node (or a self-loop),
    each sorted; Tarjan's algorithm, iterative so that deep graphs do not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        components.append(sorted(component))
    return sorted(components)


def cycle_violations(modules: Mapping[str, Module]) -> list[str]:
    graph = import_graph(modules)
    out = []
    for component in find_cycles(graph):
        members = set(component)
        edges = [
            f"{a}:{graph[a][b]} -> {b}" for a in component for b in sorted(graph[a]) if b in members
        ]
        out.append("import cycle: " + ", ".join(edges))
    return out


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_violations(modules: Mapping[str, Module]) -> list[str]:
    out = []
    for name, module in modules.items():
        aliases: dict[str, str] = {}  # local name -> the ivigmeta module it is bound to
        for imp in imports(module):
            if imp.module != PACKAGE and not imp.module.startswith(PACKAGE + "."):
                continue
            if any(_is_private(part) for part in imp.module.split(".")):
                out.append(f"{module.rel}:{imp.line}: imports private module {imp.module}")
            if not imp.names:
                # ``import a.b.c`` binds ``a``; ``import a.b.c as m`` binds the module itself
                aliases[imp.bound[0]] = imp.module if imp.bound[0] != PACKAGE else PACKAGE
                continue
            for n, local in zip(imp.names, imp.bound):
                if f"{imp.module}.{n}" in modules:
                    aliases[local] = f"{imp.module}.{n}"
                if _is_private(n) and imp.module != name:
                    out.append(f"{module.rel}:{imp.line}: imports {n} from {imp.module}")
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
                continue
            owner = _dotted(node.value)
            if owner is None:
                continue
            head, _, rest = owner.partition(".")
            if head not in aliases:
                continue
            target = aliases[head] + (f".{rest}" if rest else "")
            if target in modules and target != name:
                out.append(f"{module.rel}:{node.lineno}: uses {target}.{node.attr}")
    return sorted(set(out))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def layer_violations(modules: Mapping[str, Module]) -> list[str]:
    out = []
    for name, module in modules.items():
        for imp in imports(module):
            top = imp.module.split(".")[0]
            if top in LAYERS:
                allowed = LAYERS[top]
                if not any(name == a or name.startswith(a + ".") for a in allowed):
                    out.append(
                        f"{module.rel}:{imp.line}: imports {imp.module} outside {allowed[0]}"
                    )
            if name == CORE or name.startswith(CORE + "."):
                if imp.module.startswith(PACKAGE) and not any(
                    imp.module == a or imp.module.startswith(a + ".") for a in CORE_MAY_IMPORT
                ):
                    out.append(f"{module.rel}:{imp.line}: core imports {imp.module}")
    return sorted(set(out))


def loaders(modules: Mapping[str, Module], package: str) -> dict[str, str]:
    """The modules whose import loads the third-party ``package``, each with how: ``line N`` (a
    module-level import of it) or the ivigmeta module it imports at module level that loads it."""
    graph = import_graph(modules, module_level_only=True)
    found: dict[str, str] = {}
    for name, module in modules.items():
        for imp in imports(module):
            if not imp.in_function and imp.module.split(".")[0] == package:
                found.setdefault(name, f"line {imp.line}")
    changed = True
    while changed:
        changed = False
        for name in sorted(graph):
            if name in found:
                continue
            via = sorted(set(graph[name]) & set(found))
            if via:
                found[name] = f"{via[0]}, line {graph[name][via[0]]}"
                changed = True
    return found


def laziness_violations(modules: Mapping[str, Module]) -> list[str]:
    out = []
    for package, allowed in LAZY.items():
        for name, how in loaders(modules, package).items():
            if not name.startswith(allowed):
                out.append(f"{modules[name].rel}: importing it loads {package} ({how})")
    return sorted(out)


def all_violations(modules: Mapping[str, Module]) -> list[str]:
    return (
        cycle_violations(modules)
        + private_violations(modules)
        + layer_violations(modules)
        + laziness_violations(modules)
    )


# ---------------------------------------------------------------------------------------------
# The tests


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return load_modules()


def test_no_import_cycle(modules: dict[str, Module]) -> None:
    assert (cycle_violations(modules)) == []


def test_nothing_private_crosses_a_module_line(modules: dict[str, Module]) -> None:
    assert (private_violations(modules)) == []


def test_layers_and_one_way_pipeline(modules: dict[str, Module]) -> None:
    assert (layer_violations(modules)) == []


def test_heavy_packages_load_lazily(modules: dict[str, Module]) -> None:
    assert (laziness_violations(modules)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert find_cycles(graph) == [["a", "b", "c"], ["e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_checks_see_synthetic_violations(tmp_path: Path) -> None:
    """A small package with one violation of each kind: every check reports exactly its own."""
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/c.py": "import rich\nfrom ivigmeta.plots.b import _x\nfrom ivigmeta.errors import E\n",
        "plots/__init__.py": "from ivigmeta.plots.a import draw\n",
        "plots/a.py": "import matplotlib\n\ndef draw():\n    from ivigmeta.plots import b\n    return b._x\n",
        "plots/b.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from ivigmeta.core.c import y\n"
            "_x = 1\n\ndef f():\n    from ivigmeta.plots.a import draw\n"
        ),
        "render/__init__.py": "from . import table\n",
        "render/table.py": "from rich.table import Table\nfrom ..plots import b as _b\n",
    }
    root = tmp_path / PACKAGE
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    found = load_modules(root)
    assert cycle_violations(found) == [
        "import cycle: ivigmeta.plots.a:4 -> ivigmeta.plots.b, ivigmeta.plots.b:7 -> ivigmeta.plots.a"
    ]
    assert private_violations(found) == [
        "ivigmeta/core/c.py:2: imports _x from ivigmeta.plots.b",
        "ivigmeta/plots/a.py:5: uses ivigmeta.plots.b._x",
    ]
    assert layer_violations(found) == [
        "ivigmeta/core/c.py:1: imports rich outside ivigmeta.render",
        "ivigmeta/core/c.py:2: core imports ivigmeta.plots.b",
    ]
    assert laziness_violations(found) == [
        "ivigmeta/core/c.py: importing it loads rich (line 1)",
        "ivigmeta/plots/__init__.py: importing it loads matplotlib (ivigmeta.plots.a, line 1)",
        "ivigmeta/render/__init__.py: importing it loads rich (ivigmeta.render.table, line 1)",
    ]


if __name__ == "__main__":  # print every violation, known or not
    for violation in all_violations(load_modules()):
        print(violation)
