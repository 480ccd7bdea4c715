"""The messages that mean "try again" are each backend's registration plus the C library's shared words; the
combination classifies every message the tests and the corpora hold exactly as the one shared list did, plus
the patterns added since (each named below)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from reconciler.apply.classify import Classification, classify, transient_exit_codes, transient_patterns
from reconciler.backends.registry import PRECONDITION_PATTERNS, TRANSIENT_EXIT_CODES, TRANSIENT_PATTERNS
from reconciler.host.base import CommandResult
from tests.conftest import REAL_OUTPUTS

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]

# The one shared list of messages and exit codes that meant "try again" before each backend registered its own.
_FORMER_TRANSIENT = (
    re.compile(r"Resource temporarily unavailable", re.I),
    re.compile(r"Device or resource busy", re.I),
    re.compile(r"Try again", re.I),
    re.compile(r"lock(ing)? .*(failed|held|timed out)|Can't get lock|Failed to acquire lock", re.I),
    re.compile(r"Connection timed out|Timed out|timeout", re.I),
    re.compile(r"Interrupted system call", re.I),
    re.compile(r"temporar(y|ily)", re.I),
)
_FORMER_CODES = (11, 75)
# Added to a backend's registration since, each deliberately: drbdadm killing a slow drbdsetup (seen on DRBD 8.4
# on a loaded node) is transient.
_ADDED_SINCE = (
    re.compile(r"Command '[^']*drbdsetup[^']*' did not terminate within \d+ seconds"),
)


def _former_classify(result: CommandResult) -> Classification:
    """The classification as it was, transcribed: the reference the registry's combination is held to."""
    if result.ok:
        return Classification("ok", "")
    said = result.describe()
    if result.timed_out:
        return Classification("transient", said)
    if result.not_found:
        return Classification("permanent", f"{said} (is the tool installed?)")
    text = f"{result.stderr}\n{result.stdout}"
    for patterns in PRECONDITION_PATTERNS.values():
        for pattern in patterns:
            if pattern.search(text):
                return Classification("precondition", said)
    for pattern in (*_FORMER_TRANSIENT, *_ADDED_SINCE):
        if pattern.search(text):
            return Classification("transient", said)
    if result.returncode in _FORMER_CODES:
        return Classification("transient", said)
    return Classification("permanent", said)


def _text_files() -> list[Path]:
    folders = [ROOT / "tests" / "parsers" / "fixtures", ROOT / "tests" / "observe" / "fixtures",
               ROOT / "tests" / "sim" / "fixtures", REAL_OUTPUTS]
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.rglob("*")) if p.is_file()]


def _string_literals(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def _corpus() -> list[str]:
    """Every line of every fixture and captured output, every string the simulator prints and every string
    the tests of the executor hold: what the tools say, real or emulated."""
    lines: set[str] = set()
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        lines.update(line for line in text.splitlines() if line.strip())
    code = [*sorted((ROOT / "reconciler" / "sim").rglob("*.py")), *sorted((ROOT / "tests" / "apply").glob("*.py"))]
    lines.update(s for s in _string_literals(code) if s.strip() and s.count("\n") < 20)
    return sorted(lines)


def test_the_combination_is_the_former_list_and_every_backend_pattern_is_registered_once() -> None:
    combined = transient_patterns()
    expected = (*_FORMER_TRANSIENT, *_ADDED_SINCE)
    assert {(p.pattern, p.flags) for p in combined} == {(p.pattern, p.flags) for p in expected}
    assert len(combined) == len(expected)
    assert transient_exit_codes() == frozenset(_FORMER_CODES)
    assert set(TRANSIENT_PATTERNS) == {"lvm", "drbd"}
    assert set(TRANSIENT_EXIT_CODES) == {"drbd"}


def test_every_message_of_the_corpus_classifies_as_before() -> None:
    corpus = _corpus()
    assert len(corpus) > 1000, "the corpus is far smaller than the fixtures hold: were they moved?"
    kinds: dict[str, int] = {}
    for message in corpus:
        for code in (1, 3, 5, 11, 17, 75):
            for as_stdout in (False, True):
                res = CommandResult(("tool",), code, message if as_stdout else "", "" if as_stdout else message)
                new, old = classify(res), _former_classify(res)
                assert new == old, f"{message!r} (exit {code}): now {new.kind}, before {old.kind}"
                kinds[new.kind] = kinds.get(new.kind, 0) + 1
    # The corpus reaches every kind a failure can have, so the comparison is not over permanent ones alone.
    assert set(kinds) == {"transient", "permanent", "precondition"}


def test_a_backend_registration_alone_makes_its_message_transient() -> None:
    lock = CommandResult(("lvcreate",), 5, "", "  Can't get lock for vg-sda")
    assert classify(lock).kind == "transient"
    assert not any(p.search(lock.stderr) for p in transient_patterns() if p not in TRANSIENT_PATTERNS["lvm"])
