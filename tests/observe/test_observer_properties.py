"""Whatever the tools print or exit with, a pass completes and says per tool what it could not read."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.host.base import EXIT_NOT_FOUND, EXIT_TIMEOUT
from reconciler.observe.observer import MAX_COMMANDS_PER_PASS, Observer
from tests.observe.scripted import Answer, ScriptedHost, full_node

_TEMPLATE = full_node(drbd="9")
_TEMPLATE_84 = full_node(drbd="8.4")


def _mutations(text: str) -> st.SearchStrategy[str]:
    lines = text.splitlines(keepends=True)
    return st.one_of(
        st.just(text),
        st.just(""),
        st.text(max_size=200),
        st.integers(0, max(len(text) - 1, 0)).map(lambda cut: text[:cut]),
        st.tuples(st.integers(0, max(len(text) - 1, 0)), st.characters()).map(
            lambda pair: text[:pair[0]] + pair[1] + text[pair[0] + 1:]),
        st.permutations(lines).map("".join),
        st.lists(st.sampled_from(lines or ["\n"]), max_size=len(lines) + 3).map("".join),
    )


def _answer(answer: Answer) -> st.SearchStrategy[Answer]:
    return st.one_of(
        st.just(answer),
        st.builds(Answer, _mutations(answer.stdout), st.just(""), st.just(0)),
        st.builds(Answer, st.just(""), st.text(max_size=80), st.sampled_from([1, 3, 5, 20, EXIT_TIMEOUT])),
    )


@st.composite
def _nodes(draw: st.DrawFn) -> ScriptedHost:
    template = draw(st.sampled_from([_TEMPLATE, _TEMPLATE_84]))
    host = ScriptedHost(answers={argv: draw(_answer(a)) for argv, a in template.answers.items()})
    host.files = {path: draw(_mutations(text)) for path, text in template.files.items()}
    host.missing_programs = set(draw(st.lists(st.sampled_from(["lvm", "vgs", "dmsetup", "drbdsetup", "drbdadm", "xl"]),
                                              max_size=2)))
    return host


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_nodes())
def test_a_pass_never_raises_and_reports_every_tool(host: ScriptedHost) -> None:
    observed = Observer(host).observe()
    assert [t.name for t in observed.tools] == ["lvm", "dmsetup", "drbd", "drbdadm", "xl", "files"]
    for tool in observed.tools:
        assert tool.state in ("available", "missing", "failed")
        if tool.state != "available":
            assert tool.detail
    assert observed.commands_run <= MAX_COMMANDS_PER_PASS
    if observed.tool("lvm").state != "available":  # type: ignore[union-attr]
        assert observed.volume_groups == ()
        assert observed.logical_volumes == ()
    if observed.tool("xl").state != "available":  # type: ignore[union-attr]
        assert observed.domains == ()


def test_not_found_is_missing_and_other_exits_are_failed() -> None:
    host = full_node()
    host.missing_programs.add("dmsetup")
    observed = Observer(host).observe()
    assert observed.tool("dmsetup").state == "missing"  # type: ignore[union-attr]
    host = full_node()
    for argv in list(host.answers):
        if argv[0] == "dmsetup" and argv[1] == "info":
            host.answers[argv] = Answer("", "dmsetup: not found", EXIT_NOT_FOUND)
    # A shell-style 127 without the host saying "not found" is a failure, not a missing tool.
    assert Observer(host).observe().tool("dmsetup").state == "failed"  # type: ignore[union-attr]
