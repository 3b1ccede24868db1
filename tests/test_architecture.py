"""The one-way stack, computed from the source (ast): no upward import, no module cycle.

Layers, bottom to top: ``tfgym`` (the core: every module outside ``tfgym/cli/``) <-
``reward_models`` <- ``agents`` <- ``tfgym.cli`` (the command line). A module may import its
own layer and the layers below, anywhere in the file (inside functions too); nothing below
imports anything above.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tfgym", "reward_models", "agents")
LAYERS = {"tfgym": 0, "reward_models": 1, "agents": 2, "tfgym.cli": 3}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    if module == "tfgym.cli" or module.startswith("tfgym.cli."):
        return LAYERS["tfgym.cli"]
    return LAYERS[module.split(".")[0]]


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules imported anywhere in the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for name in names:
            # the longest project module that the import names
            parts = name.split(".")
            for k in range(len(parts), 0, -1):
                candidate = ".".join(parts[:k])
                if candidate in known:
                    found.add(candidate)
                    break
    found.discard(module)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {m: imports_of(m, p, known) for m, p in modules.items()}


def test_graph_sees_the_packages(graph):
    # a guard against a vacuous pass: the walk must find the stack's real edges
    assert {"tfgym.env", "tfgym.scoring", "reward_models.train", "tfgym.cli"} <= set(graph)
    assert "tfgym.scoring" in graph["tfgym.env"]
    assert any(m.startswith("tfgym.") for m in graph["reward_models.train"])


def test_no_upward_imports(graph):
    upward = sorted(
        f"{m} -> {dep}" for m, deps in graph.items() for dep in deps if layer(dep) > layer(m)
    )
    assert not upward, "imports against the one-way stack:\n" + "\n".join(upward)


def test_no_module_cycles(graph):
    """Tarjan's strongly connected components over the module graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"module import cycles: {cycles}"


def test_detector_catches_an_upward_import(tmp_path):
    """The checker itself fails on a core module that imports reward_models in a function."""
    bad = tmp_path / "tfgym" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from reward_models.train import train_reward_model\n")
    found = imports_of("tfgym.bad", bad, {"tfgym.bad", "reward_models.train", "reward_models"})
    assert found == {"reward_models.train"}
    assert layer("reward_models.train") > layer("tfgym.bad")


@pytest.mark.parametrize(
    ("code", "banned"),
    [
        ("import tfgym", ("torch", "vtk", "vtkmodules", "pyvista", "matplotlib")),
        ("import tfgym.env", ("torch", "vtkmodules", "pyvista", "matplotlib")),
        (
            "import reward_models, reward_models.config; reward_models.config.TrainConfig(); "
            "reward_models.EvalConfig()",
            ("torch", "matplotlib"),
        ),
        (
            "import tfgym.observation, tfgym.preferences",
            ("reward_models", "agents", "torch", "stable_baselines3", "tfgym.env", "tfgym.collect"),
        ),
    ],
    ids=["tfgym", "tfgym.env", "reward_models.config", "preferences"],
)
def test_light_imports(code, banned):
    probe = f"{code}; import sys; print(sorted(m for m in {banned!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]", f"{code} loads {out.stdout.strip()}"
