"""Whatever an operator writes, loading ends in a cluster or in issues with positions, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.load import collect
from tests.conftest import EXAMPLE_DIR

REPLACEMENTS = ("", "~", "[]", "{}", "-1", "0", "true", '"x"', "a b", "[a, [b]]", "{a: 1}", "&x 1", "!!binary aGk=",
                "2000-01-01", "0x10", "1.5", "'..'")


def mutations(text: str) -> list[str]:
    """Each line deleted, and each value replaced by each odd value in turn."""
    lines = text.splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        out.append("".join(lines[:i] + lines[i + 1:]))
        if ":" in line and not line.lstrip().startswith("#"):
            key = line.split(":", 1)[0]
            out.extend("".join([*lines[:i], f"{key}: {value}\n", *lines[i + 1:]]) for value in REPLACEMENTS)
    return out


@pytest.mark.parametrize("target", ["cluster.yaml", "vms/vm100.yaml", "vms/vm101.yaml"])
def test_mutated_example_never_crashes_the_loader(tmp_path: Path, target: str) -> None:
    originals = {p.relative_to(EXAMPLE_DIR).as_posix(): p.read_text() for p in EXAMPLE_DIR.rglob("*.yaml")}
    variants = mutations(originals[target])
    assert len(variants) > 50
    invalid = 0
    for n, variant in enumerate(variants):
        root = tmp_path / str(n)
        for rel, text in originals.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(variant if rel == target else text)
        cluster, issues = collect(str(root))
        assert (cluster is None) == bool(issues)
        invalid += cluster is None
        for issue in issues:
            assert issue.path in originals
            assert issue.line >= 1
            assert issue.col >= 1
            assert issue.message
            assert issue.hint
    assert invalid > len(variants) // 2
