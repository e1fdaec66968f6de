"""The package layout's import rules: no import circle inside kvtwist, and imports run downwards.

Every ``import`` and ``from ... import`` in kvtwist (function-level ones included) is read with
``ast``; a ``from kvtwist.pkg import name`` that names a module is an edge to that module.
"""

from __future__ import annotations

import ast
import os
import unittest

import kvtwist

PACKAGE_DIR = os.path.dirname(os.path.abspath(kvtwist.__file__))

# A module may import its own package and any package of a lower rank, nothing else of kvtwist.
# The root package (kvtwist/__init__.py: the version) is below every layer.
RANKS = {
    "kvtwist": 0,
    "kvtwist.wire": 1,
    "kvtwist.engine": 2,
    "kvtwist.loop": 2,
    "kvtwist.storage": 3,
    "kvtwist.serve": 4,
    "kvtwist.client": 5,
    "kvtwist.proxy": 6,
    "kvtwist.cli": 6,
}

# Pure layers: no reactor, no sockets, no threads of Twisted's.
PURE = ("kvtwist.wire", "kvtwist.engine")


def module_files(root: str = PACKAGE_DIR, name: str = "kvtwist") -> dict:
    """Return {dotted module name: path} for every .py file under ``root``."""
    found = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(("_", ".")))
        relative = os.path.relpath(directory, root)
        prefix = name if relative == "." else name + "." + relative.replace(os.sep, ".")
        for filename in sorted(files):
            if not filename.endswith(".py"):
                continue
            stem = filename[:-3]
            found[prefix if stem == "__init__" else prefix + "." + stem] = os.path.join(
                directory, filename)
    return found


def imports_of(source: str, module: str, modules) -> set:
    """Return every module name ``source`` (the text of ``module``) imports, kvtwist or not."""
    package = module if module in modules and _is_package(module, modules) else \
        module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                candidate = base + "." + alias.name
                found.add(candidate if candidate in modules else base)
    return found


def _is_package(module: str, modules) -> bool:
    return any(other.startswith(module + ".") for other in modules)


def import_graph(files: dict) -> dict:
    """Return {module: set of kvtwist modules it imports} for the modules in ``files``."""
    graph = {}
    for module, path in files.items():
        with open(path, encoding="utf-8") as f:
            source = f.read()
        graph[module] = {name for name in imports_of(source, module, files)
                         if name in files and name != module}
    return graph


def find_cycle(graph: dict):
    """Return one import circle as a list [a, b, ..., a], or None when there is none."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        colour[start] = GREY
        while stack:
            step = next(stack[-1], None)
            if step is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour.get(step) == GREY:
                return path[path.index(step):] + [step]
            elif colour.get(step) == WHITE:
                colour[step] = GREY
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
    return None


def layer_of(module: str) -> str:
    """Return the package (a key of RANKS) that ``module`` belongs to."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def upward_imports(graph: dict, ranks: dict = RANKS) -> list:
    """Return sorted (importer, imported) pairs that break the layer order."""
    bad = []
    for module, targets in graph.items():
        own = layer_of(module)
        for target in targets:
            other = layer_of(target)
            if other != own and ranks[other] >= ranks[own]:
                bad.append((module, target))
    return sorted(bad)


class CheckerTests(unittest.TestCase):
    """The checks themselves find what they are meant to find."""

    def test_finds_a_circle(self):
        """A three-module circle is reported as the path around it."""
        graph = {"kvtwist.a": {"kvtwist.b"}, "kvtwist.b": {"kvtwist.c"},
                 "kvtwist.c": {"kvtwist.a"}, "kvtwist.d": {"kvtwist.a"}}
        self.assertEqual(find_cycle(graph), ["kvtwist.a", "kvtwist.b", "kvtwist.c", "kvtwist.a"])

    def test_no_circle_in_a_diamond(self):
        """Two paths to one module are not a circle."""
        graph = {"kvtwist.a": {"kvtwist.b", "kvtwist.c"}, "kvtwist.b": {"kvtwist.d"},
                 "kvtwist.c": {"kvtwist.d"}, "kvtwist.d": set()}
        self.assertIsNone(find_cycle(graph))

    def test_finds_an_upward_import(self):
        """storage importing serve, and engine importing loop (a sibling), break the order."""
        graph = {"kvtwist.storage.journal": {"kvtwist.serve.protocol", "kvtwist.engine.keyspace"},
                 "kvtwist.engine.keys": {"kvtwist.loop.turns", "kvtwist.wire.replies"},
                 "kvtwist.serve.protocol": {"kvtwist.storage.journal"}}
        self.assertEqual(upward_imports(graph), [
            ("kvtwist.engine.keys", "kvtwist.loop.turns"),
            ("kvtwist.storage.journal", "kvtwist.serve.protocol")])

    def test_reads_function_level_and_relative_imports(self):
        """Imports inside functions and relative imports are edges too."""
        modules = {"kvtwist.engine.store": "", "kvtwist.engine.table": "", "kvtwist.serve.tap": ""}
        source = ("from . import table\n"
                  "def f():\n    from kvtwist.serve import tap\n    import twisted.internet\n")
        self.assertEqual(imports_of(source, "kvtwist.engine.store", modules),
                         {"kvtwist.engine.table", "kvtwist.serve.tap", "twisted.internet"})


class LayoutTests(unittest.TestCase):
    """kvtwist itself follows the rules."""

    def setUp(self):
        self.files = module_files()
        self.graph = import_graph(self.files)

    def test_only_packages_at_the_top(self):
        """kvtwist/ holds only __init__.py beside the packages, each a known layer."""
        top = sorted(name for name in self.files if name.count(".") <= 1)
        self.assertEqual(top, sorted(RANKS))
        self.assertEqual([n for n in self.files if n.count(".") == 1 and n not in RANKS], [])

    def test_no_import_circle(self):
        """No kvtwist module imports one that imports it back, directly or through others."""
        self.assertIsNone(find_cycle(self.graph))

    def test_imports_run_downwards(self):
        """Every import inside kvtwist goes to the module's own package or a lower layer."""
        self.assertEqual(upward_imports(self.graph), [])

    def test_pure_layers_do_not_touch_the_reactor(self):
        """wire and engine import nothing from twisted.internet."""
        impure = []
        for module, path in self.files.items():
            if layer_of(module) in PURE:
                with open(path, encoding="utf-8") as f:
                    names = imports_of(f.read(), module, self.files)
                impure += [(module, n) for n in names if n.startswith("twisted.internet")]
        self.assertEqual(impure, [])

    def test_the_root_imports_nothing(self):
        """kvtwist/__init__.py, which every layer may import, imports no kvtwist module."""
        self.assertEqual(self.graph["kvtwist"], set())
