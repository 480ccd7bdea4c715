"""The daemon's subpackages import one another in one direction only, as docs/architecture.md shows.

A cycle between them would mean a concern no longer stands on its own (the fence-peer handler, a separate
process, must not need the loop; the threads that only wake the loop must not run it).
"""

from __future__ import annotations

from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DAEMON = "reconciler.daemon"
# Subpackage -> the subpackages it may import from.
ALLOWED = {
    "loop": {"schedule", "peers", "node", "records"},
    "schedule": {"records"},
    "peers": {"records"},
    "node": {"peers", "records"},
    "records": set(),
}


def _archgraph() -> ModuleType:
    loader = SourceFileLoader("archgraph", str(ROOT / "scripts" / "archgraph"))
    spec = spec_from_loader("archgraph", loader)
    assert spec is not None
    module = module_from_spec(spec)
    loader.exec_module(module)
    return module


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if module.startswith(DAEMON + ".") and len(parts) > 2 else None


def _edges() -> dict[str, set[str]]:
    archgraph = _archgraph()
    known = archgraph.modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        source = _subpackage(name)
        if source is None:
            continue
        edges.setdefault(source, set())
        for target in archgraph.imported_modules(name, path, known):
            sub = _subpackage(target)
            if sub is not None and sub != source:
                edges[source].add(sub)
    return edges


def test_every_module_of_the_daemon_is_in_a_subpackage() -> None:
    daemon = ROOT / "reconciler" / "daemon"
    assert [p.name for p in daemon.glob("*.py")] == ["__init__.py"]
    assert {p.parent.name for p in daemon.glob("*/__init__.py")} == set(ALLOWED)


def test_subpackages_import_only_downwards() -> None:
    edges = _edges()
    assert set(edges) == set(ALLOWED)
    for source, targets in edges.items():
        assert targets <= ALLOWED[source], f"daemon.{source} imports {sorted(targets - ALLOWED[source])}"
    assert _archgraph().cycles(edges) == []
