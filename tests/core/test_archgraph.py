"""The package graph in docs/architecture.md is the one the imports make, it has no cycle, and the README's
layer paragraph names the same layers."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "archgraph"


def _load() -> ModuleType:
    loader = SourceFileLoader("archgraph", str(SCRIPT))
    spec = spec_from_loader("archgraph", loader)
    assert spec is not None
    module = module_from_spec(spec)
    loader.exec_module(module)
    return module


archgraph = _load()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          check=False, cwd=ROOT)


def test_the_checked_in_graph_matches_the_imports() -> None:
    proc = _run("--check")
    assert proc.returncode == 0, proc.stderr


def test_there_is_no_cycle_between_packages() -> None:
    graph = archgraph.build_graph()
    assert {"plan", "daemon", "host", "model", "names"} <= set(graph)  # the walk found the packages
    assert archgraph.cycles(graph) == []


def test_there_is_no_cycle_between_modules() -> None:
    """Type-only imports count too: a protocol that needs a class that needs the protocol is declared apart."""
    known = archgraph.modules()
    graph = {name: {t for t in archgraph.imported_modules(name, path, known) if t in known and t != name}
             for name, path in known.items()}
    assert {"reconciler.core.seams", "reconciler.core.vm_builder"} <= set(graph)
    assert "reconciler.core.seams" in graph["reconciler.core.vm_builder"]
    assert archgraph.cycles(graph) == []


def test_a_stale_section_fails_the_check_with_a_diff(tmp_path: Path) -> None:
    doc = tmp_path / "architecture.md"
    section = archgraph.render(archgraph.build_graph())
    doc.write_text("intro\n\n" + section.replace("- `model` -> `sizes`", "- `model` -> `plan`") + "\nafter\n")
    proc = _run("--check", "--doc", str(doc))
    assert proc.returncode == 1
    assert "does not match the code; run scripts/archgraph" in proc.stderr
    assert "-- `model` -> `plan`" in proc.stderr
    assert "+- `model` -> `sizes`" in proc.stderr


def test_writing_replaces_only_the_section(tmp_path: Path) -> None:
    doc = tmp_path / "architecture.md"
    doc.write_text(f"intro\n\n{archgraph.BEGIN}\nold\n{archgraph.END}\nafter\n")
    assert _run("--doc", str(doc)).returncode == 0
    text = doc.read_text()
    assert text == "intro\n\n" + archgraph.render(archgraph.build_graph()) + "\nafter\n"
    assert _run("--check", "--doc", str(doc)).returncode == 0


def test_a_document_without_the_markers_fails_the_check(tmp_path: Path) -> None:
    doc = tmp_path / "architecture.md"
    doc.write_text("no markers\n")
    proc = _run("--check", "--doc", str(doc))
    assert proc.returncode == 1
    assert "has no section between" in proc.stderr


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_every_form_of_import_makes_an_edge(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "pkg/__init__.py": "VERSION = 1\n",
        "pkg/leaf.py": "",
        "pkg/a/__init__.py": "",
        "pkg/a/x.py": "def f():\n    from pkg.b import y\n",  # inside a function
        "pkg/b/__init__.py": "",
        "pkg/b/y.py": "from ..c import z\nfrom . import w\n",  # relative, and within the package
        "pkg/b/w.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d.v\n",
        "pkg/c/__init__.py": "",
        "pkg/c/z.py": "from pkg import leaf\nfrom pkg import VERSION\nimport os\n",
        "pkg/d/__init__.py": "",
        "pkg/d/v.py": "",
    })
    graph = archgraph.build_graph(root, "pkg")
    assert graph == {"pkg": set(), "leaf": set(), "a": {"b"}, "b": {"c", "d"}, "c": {"leaf", "pkg"}, "d": set()}


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert archgraph.cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert archgraph.layers(graph) == [["a", "b", "c", "f"], ["d", "e"]]


def test_layers_put_each_package_above_what_it_imports() -> None:
    graph = archgraph.build_graph()
    level = {node: number for number, nodes in enumerate(archgraph.layers(graph)) for node in nodes}
    assert all(level[target] < level[node] for node, targets in graph.items() for target in targets)


def _readme_layers(nodes: set[str]) -> list[set[str]]:
    """The packages the README's layer paragraph names, layer by layer (other quoted words left out)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^Layers, top first.*?(?=\n\n)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "README.md has no paragraph starting with 'Layers, top first'"
    return [set(re.findall(r"`(\w+)`", chunk)) & nodes for chunk in match.group(0).split("→")]


def test_the_readme_names_the_layers_of_the_graph() -> None:
    """Top first; the entry point and the version module are left out of the README's sentence."""
    graph = archgraph.build_graph()
    unnamed = {"__main__", "reconciler"}
    layers = [set(nodes) - unnamed for nodes in reversed(archgraph.layers(graph))]
    assert _readme_layers(set(graph)) == [nodes for nodes in layers if nodes]
