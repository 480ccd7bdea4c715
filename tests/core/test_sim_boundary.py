"""The simulator stays outside the product: no module beyond ``reconciler/sim`` imports it.

Every import statement counts, at module level or inside a function, absolute or relative. The product
reaches the simulator only through the two registration tables that name its modules as data: the host
factory's providers and the command table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIM = "reconciler.sim"
# Where a simulator module may be named (as a string, imported only when that kind of node or command is used).
REGISTRATION_TABLES = {"reconciler.host.factory": "PROVIDER_MODULES", "reconciler.cli.main": "COMMANDS"}
MODULE_NAME = re.compile(r"reconciler\.sim(\.\w+)*")


def product_modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("reconciler", "reconciler_lab"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[:2] == ("reconciler", "sim"):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def _is_sim(module: str) -> bool:
    return module == SIM or module.startswith(SIM + ".")


def sim_imports(name: str, path: Path, root: Path = ROOT) -> list[str]:
    """``path:line: statement`` for each import of the simulator in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from reconciler import sim` imports the simulator as well as `import reconciler.sim` does.
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called in ("importlib.import_module", "import_module", "__import__") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    targets = [first.value]
        if any(_is_sim(t) for t in targets):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def _table_value(node: ast.AST, table: str | None) -> ast.expr | None:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == table:
        return node.value
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == table for t in node.targets):
        return node.value
    return None


def sim_names_outside_tables(name: str, path: Path, root: Path = ROOT) -> list[str]:
    """String constants naming a simulator module, other than in a registration table."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    allowed: set[int] = set()
    for node in ast.walk(tree):
        value = _table_value(node, REGISTRATION_TABLES.get(name))
        if value is not None:
            allowed |= {id(sub) for sub in ast.walk(value)}
    return [f"{path.relative_to(root)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and MODULE_NAME.fullmatch(node.value) and id(node) not in allowed]


def test_no_product_module_imports_the_simulator() -> None:
    modules = product_modules()
    assert len(modules) > 100  # the walk found the product
    offending = [line for name, path in modules for line in sim_imports(name, path)]
    assert offending == []


def test_the_simulator_is_named_only_in_the_registration_tables() -> None:
    offending = [line for name, path in product_modules() for line in sim_names_outside_tables(name, path)]
    assert offending == []


@pytest.mark.parametrize("source", [
    "import reconciler.sim.state",
    "from reconciler.sim.host import SimHost",
    "from reconciler import sim",
    "def f():\n    from reconciler.sim import faults\n",
    "from ..sim import faults",
    "from .. import sim",
    "import importlib\nimportlib.import_module('reconciler.sim.host')",
])
def test_every_form_of_import_is_seen(tmp_path: Path, source: str) -> None:
    module = tmp_path / "reconciler" / "cli" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n")
    assert len(sim_imports("reconciler.cli.x", module, tmp_path)) == 1


def test_imports_of_other_packages_are_not_taken_for_the_simulator(tmp_path: Path) -> None:
    module = tmp_path / "reconciler" / "cli" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("import reconciler.simple\nfrom reconciler import sizes\nfrom . import sim_like\n")
    assert sim_imports("reconciler.cli.x", module, tmp_path) == []


def test_a_string_naming_the_simulator_outside_the_tables_is_seen(tmp_path: Path) -> None:
    module = tmp_path / "reconciler" / "host" / "factory.py"
    module.parent.mkdir(parents=True)
    module.write_text('PROVIDER_MODULES = {"sim": "reconciler.sim.provider"}\nOTHER = "reconciler.sim.state"\n')
    assert sim_names_outside_tables("reconciler.host.factory", module, tmp_path) == [
        "reconciler/host/factory.py:2: 'reconciler.sim.state'"]
