"""The layering rules of docs/architecture.md, checked on the source's import graph.

Every ``import`` statement counts, at module level or inside a function: a deferred import
still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("transfer_automl", "knowledge_base", "pretrained", "benchmarks")
#: Modules of transfer_automl that import nothing else of the project: anyone may use them.
BOTTOM = {"transfer_automl.errors", "transfer_automl.trial", "transfer_automl.space",
          "transfer_automl.paths", "transfer_automl.quiet"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {_resolve(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else _resolve(base))
    found.discard(None)
    found.discard(module)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def _package(module: str) -> str:
    """The package a module belongs to (itself for a package's ``__init__``)."""
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_import_cycles():
    assert _cycles() == []


@pytest.mark.parametrize("package", ["knowledge_base", "pretrained"])
def test_knowledge_base_and_pretrained_use_only_the_bottom_of_transfer_automl(package):
    bad = sorted((m, i) for m, imports in GRAPH.items() if m.split(".")[0] == package
                 for i in imports if i.split(".")[0] == "transfer_automl" and i not in BOTTOM)
    assert bad == []


def test_bottom_modules_import_nothing_of_the_project():
    bad = sorted((m, i) for m in BOTTOM for i in GRAPH[m]
                 if i.split(".")[0] in PACKAGES and i not in BOTTOM)
    assert bad == []


def test_training_imports_no_executor_and_executors_no_sampler():
    bad = [(m, i) for m, imports in GRAPH.items() for i in imports
           if (m.startswith("transfer_automl.training") and i.startswith("transfer_automl.executors"))
           or (m.startswith("transfer_automl.executors")
               and i.startswith(("transfer_automl.samplers", "transfer_automl.pruners")))]
    assert bad == []


def test_no_module_imports_another_packages_private_module():
    """A module named ``_x`` is private to its package: only modules of that package (and
    of its sub-packages) import it."""
    bad = []
    for module, imports in GRAPH.items():
        for imported in imports:
            name = imported.rpartition(".")[2]
            if name.startswith("_") and not name.startswith("__"):
                owner = imported.rpartition(".")[0]
                if not (_package(module) == owner or _package(module).startswith(owner + ".")):
                    bad.append((module, imported))
    assert sorted(bad) == []


def test_every_exception_class_lives_in_the_errors_module():
    bad = []
    for module, path in MODULES.items():
        if module == "transfer_automl.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if bases & {"Exception", "TransferAutoMLError", "InputError", "TrialError",
                            "ValueError", "RuntimeError"}:
                    bad.append(f"{module}.{node.name}")
    assert bad == []


def test_no_source_file_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in (*MODULES.values(), *ROOT.glob("tests/**/*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_cache_root_is_computed_in_one_place():
    hits = [str(p.relative_to(ROOT)) for p in MODULES.values()
            if "XDG_CACHE_HOME" in p.read_text() or '".cache"' in p.read_text()]
    assert hits == ["transfer_automl/paths.py"]


#: The layers of docs/architecture.md, bottom first: a module imports from its own layer or
#: the ones below it, never from above.
LAYERS = [
    {"transfer_automl.errors", "transfer_automl.trial", "transfer_automl.space",
     "transfer_automl.paths", "transfer_automl.quiet"},
    {"pretrained", "knowledge_base", "transfer_automl.data", "transfer_automl.preprocessing",
     "transfer_automl.diagnosis", "transfer_automl.run", "transfer_automl.schedule",
     "transfer_automl.samplers", "transfer_automl.options", "transfer_automl.portfolio",
     "transfer_automl.tuning", "transfer_automl.radon",
     "transfer_automl.demo"},
    {"transfer_automl.training", "transfer_automl.embedding", "transfer_automl.executors"},
    {"transfer_automl.study", "transfer_automl.pruners", "transfer_automl.search",
     "transfer_automl.session", "transfer_automl.planning", "transfer_automl.seeding",
     "transfer_automl.tracking", "transfer_automl.export", "transfer_automl.export_tflite",
     "transfer_automl.trial_model",
     "transfer_automl.ensemble",
     "transfer_automl.result", "transfer_automl.history"},
    {"transfer_automl.api", "transfer_automl.restore", "transfer_automl.ablation"},
    {"transfer_automl.cli", "transfer_automl.server", "transfer_automl.submit", "benchmarks",
     "transfer_automl"},
]


def _layer(module: str) -> int:
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        name = ".".join(parts[:depth])
        for level, members in enumerate(LAYERS):
            if name in members:
                return level
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def test_every_import_goes_down_the_layers():
    upward = sorted((m, i) for m, imports in GRAPH.items() for i in imports
                    if _layer(i) > _layer(m))
    assert upward == []


def test_the_architecture_page_names_every_layer_member():
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = sorted(name for members in LAYERS for name in members
                     if f"`{name.removeprefix('transfer_automl.')}`" not in page
                     and f"`{name}`" not in page)
    assert missing == []
