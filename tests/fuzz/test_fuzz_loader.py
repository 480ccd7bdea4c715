"""Property-based fuzzing of the desired-state loader: whatever the text, the file names or the aliases,
loading ends in a cluster or in issues (one printable line each, with a position and a hint), in bounded
time, never an exception."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.desired.errors import Issue
from reconciler.desired.load import collect
from reconciler.desired.yamlload import parse
from tests.desired.repo import CLUSTER, VM100, write_repo
from tests.fuzz.budget import budget

KEYS = ["id", "name", "nodes", "primary", "storage", "size", "swap", "drbd", "minor", "port", "domain", "memory",
        "vcpus", "vifs", "mac", "layout", "lifecycle", "<<", "?", "-", "x"]
SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["100G", "9000P", "~", "null", "true", "yes", ".nan", "-.inf", "0x1F", "0o17", "1e400",
                     "2001-01-01", "'quoted'", '"dq\\n\\x1b"', "[]", "{}", "&a x", "*a", "!!binary aGk=", "!tag v",
                     "!!python/object:os.system x", "|", ">", "'", "\"", "#", ": ", "%YAML 1.1", "---", "..."]),
    st.text(max_size=12),
)


@st.composite
def yaml_like(draw: st.DrawFn) -> str:
    """Lines of keys and values at random indentations, with anchors and aliases sprinkled in."""
    lines = []
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        indent = "  " * draw(st.integers(min_value=0, max_value=5))
        key = draw(st.sampled_from(KEYS))
        value = draw(SCALARS)
        anchor = draw(st.sampled_from(["", "", "&a ", "&b ", "*a ", "*b "]))
        dash = draw(st.sampled_from(["", "", "- "]))
        lines.append(f"{indent}{dash}{key}: {anchor}{value}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@st.composite
def alias_towers(draw: st.DrawFn) -> str:
    """Anchored lists built from earlier anchors: what expansion bombs are made of, at random sizes."""
    levels = draw(st.integers(min_value=1, max_value=12))
    width = draw(st.integers(min_value=1, max_value=30))
    flow = draw(st.booleans())
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        refs = [f"*a{draw(st.integers(min_value=0, max_value=i - 1))}" for _ in range(width)]
        lines.append(f"a{i}: &a{i} [{', '.join(refs)}]" if flow else f"a{i}: &a{i}\n" +
                     "\n".join(f"  - {r}" for r in refs))
    return "\n".join(lines) + "\n"


def _check(issues: list[Issue]) -> None:
    for issue in issues:
        assert issue.line >= 1
        assert issue.col >= 1
        assert issue.hint
        assert issue.format().isprintable()


@given(text=st.one_of(st.text(max_size=400), yaml_like(), alias_towers()))
@budget(300)
def test_parse_never_raises_and_stays_bounded(text: str) -> None:
    doc, issues = parse("vms/x.yaml", text)
    assert doc is not None or issues
    _check(issues)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fuzz-loader-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fresh(scratch: Path) -> Path:
    root = scratch / "repo"
    shutil.rmtree(root, ignore_errors=True)
    return write_repo(root)


@given(text=st.one_of(yaml_like(), alias_towers(), st.text(max_size=300)),
       target=st.sampled_from(["cluster.yaml", "vms/vm100.yaml"]))
@budget(150)
def test_a_whole_load_never_raises(scratch: Path, text: str, target: str) -> None:
    root = _fresh(scratch)
    (root / target).write_text(text if target != "vms/vm100.yaml" else VM100 + text)
    cluster, issues = collect(str(root))
    assert (cluster is None) == bool(issues)
    _check(issues)


NAMES = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                max_size=30).filter(lambda n: n not in (".", ".."))


@given(names=st.lists(NAMES, min_size=1, max_size=5, unique=True))
@budget(100)
def test_any_file_names_are_reported_as_printable_lines(scratch: Path, names: list[str]) -> None:
    root = _fresh(scratch)
    for name in names:
        try:
            (root / "vms" / name).write_text("id: 7\n")
        except OSError:  # a name the file system refuses (too long in bytes) is no input at all
            continue
    cluster, issues = collect(str(root))
    _check(issues)
    assert cluster is None or all(n.startswith(".") and not n.lower().endswith((".yaml", ".yml")) for n in names)


def test_the_unchanged_example_still_loads(scratch: Path) -> None:
    root = _fresh(scratch)
    assert (root / "cluster.yaml").read_text() == CLUSTER
    cluster, issues = collect(str(root))
    assert issues == []
    assert cluster is not None
