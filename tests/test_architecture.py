"""The layout stays the way the README describes it: data flows one way, one home for each concern."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from lib.paths import ROOT

LIB = ROOT / "lib"


def lib_imports() -> dict[str, set[str]]:
    """module → the lib modules it imports, counting imports inside functions."""
    graph = {}
    for path in LIB.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lib.")}
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "lib":
                    deps |= {a.name for a in node.names}
                elif node.module.startswith("lib."):
                    deps.add(node.module.split(".")[1])
        graph[path.stem] = deps - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep] if dep in path else path + [dep]
            if dep not in state and (cycle := visit(dep, path + [dep])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_no_import_cycle_among_lib_modules():
    assert find_cycle(lib_imports()) is None, f"import cycle: {' → '.join(find_cycle(lib_imports()))}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


LAYERS = {
    "foundations": ["__init__", "profiles", "paths", "atomic", "device", "parallel", "hub", "memo", "published",
                    "stats"],
    "data, models, optimisation": ["source", "data", "models", "optim", "train_config", "probes", "cli", "plots"],
    "training": ["trainer", "classify", "mlm", "nsp", "floors", "store", "predict"],
    "runs": ["finetune", "pretraining", "distill", "pitfalls", "demos", "grid"],
    "experiments": ["ablations", "sweep", "audit", "recipes", "downstream"],
    "reporting": ["findings", "design", "report", "run_notebooks", "dashboard"],
}
"""lib/'s rooms, bottom up (docs/library.md draws the same map): a module imports only from its own layer or
below, so data flows one way; within a layer the cycle test keeps it one-way."""


def test_every_module_sits_in_one_layer_and_imports_only_downwards():
    graph = lib_imports()
    layer = {m: i for i, (_, mods) in enumerate(LAYERS.items()) for m in mods}
    assert sorted(layer) == sorted(graph), f"modules without a layer: {sorted(set(graph) - set(layer))}"
    upward = [(m, d) for m, deps in graph.items() for d in deps if layer[d] > layer[m]]
    assert not upward, f"imports from a higher layer: {upward}"


def test_the_map_in_docs_is_the_tested_one():
    text = (ROOT / "docs" / "library.md").read_text()
    for name, mods in LAYERS.items():
        assert all(f"`{m}`" in text for m in mods if m != "__init__"), name


def test_the_loop_knows_no_task():
    graph = lib_imports()
    assert graph["trainer"] <= {"device", "optim", "parallel", "paths", "probes", "train_config"}, graph["trainer"]
    assert graph["probes"] <= {"optim"} and graph["train_config"] <= {"device", "optim"}
    assert "distill" not in graph["classify"] and "distill" not in graph["trainer"]
    assert "teacher" not in (LIB / "classify.py").read_text()


def test_one_helper_does_every_atomic_write():
    renames = re.compile(r"os\.(replace|rename)\(|\btmp\w*\.(rename|replace)\(|shutil\.move\(")
    offenders = [p.name for p in LIB.glob("*.py") if p.name != "atomic.py" and renames.search(p.read_text())]
    assert not offenders, f"temp-then-rename outside lib/atomic.py: {offenders}"


def code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_notebooks_keep_settings_in_lib_profiles_and_cells_short():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in code_cells(path):
            assert len(cell.splitlines()) <= 15, f"{path.name}: a code cell of {len(cell.splitlines())} lines"
            assert not re.search(r"\{\s*\"smoke\"|\[PROFILE\]", cell), f"{path.name}: a per-profile table"
            assert "import matplotlib" not in cell, f"{path.name}: figures belong in lib/plots.py"


def test_every_cited_page_exists():
    """Docstrings and notebooks cite docs/*.md pages of this repo, never files outside it."""
    texts = {p: p.read_text() for p in [*LIB.glob("*.py"), *(ROOT / "notebooks").glob("*.ipynb"), ROOT / "README.md"]}
    for path, text in texts.items():
        assert "CONVENTIONS.md" not in text and "SOURCES.md" not in text, f"{path.name} cites a file outside the repo"
        for page in re.findall(r"docs/[\w-]+\.md", text):
            assert (ROOT / page).exists(), f"{path.name} cites {page}, which does not exist"


def test_notebooks_name_the_project_kernel():
    """Outside `make lab` (a system Jupyter, VS Code) a notebook must open on the kernel `make install` creates."""
    installed = re.search(r"ipykernel install .*--name (\S+)", (ROOT / "Makefile").read_text()).group(1)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == installed, path.name


SHARED_NAMES = {"main": "the module's command line", "write": "write the module's own output file",
                "get": "look one up by its name"}
"""The only public names defined in two lib modules, each with one meaning wherever it stands."""


def test_no_public_name_means_two_things():
    defined: dict[str, list[str]] = {}
    for path in sorted(LIB.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                defined.setdefault(node.name, []).append(path.stem)
    twice = {name: mods for name, mods in defined.items() if len(mods) > 1 and name not in SHARED_NAMES}
    assert not twice, f"one name, two rooms: {twice}"
