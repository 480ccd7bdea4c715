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


def test_symbolic_links_are_refused_and_never_followed(tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE_DIR, repo)
    secret = tmp_path / "secret"
    secret.write_text("root:$6$do-not-quote-me\n")
    (repo / "vms" / "leak.yaml").symlink_to(secret)
    (repo / "vms" / "loop").symlink_to(repo / "vms")
    cluster, issues = collect(str(repo))
    assert cluster is None
    shown = sorted((i.path, i.line, i.message) for i in issues)
    assert shown == [("vms/leak.yaml", 1, "is a symbolic link; the desired state is read from regular files only"),
                     ("vms/loop", 1, "is a symbolic link; the desired state is read from regular files only")]
    assert not any("do-not-quote-me" in i.message for i in issues)


def test_a_long_string_is_shortened_in_the_message(tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE_DIR, repo)
    (repo / "vms" / "long.yaml").write_text("x" * 500 + "\n")
    _, issues = collect(str(repo))
    message = next(i.message for i in issues if i.path == "vms/long.yaml")
    assert message == f"the file must be a mapping of settings, got a string ({'x' * 57 + '...'!r})"
