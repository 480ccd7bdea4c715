"""Git commands cannot hang the daemon: they are killed at their timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reconciler.source.errors import GitTimeout
from reconciler.source.gitcmd import GitRunner


def test_a_hanging_git_command_is_killed_at_its_timeout(tmp_path: Path) -> None:
    runner = GitRunner(str(tmp_path))
    started = time.monotonic()
    with pytest.raises(GitTimeout, match="killed after 1s"):
        # A shell alias stands in for a remote that never answers.
        runner.output(["-c", "alias.hang=!sleep 30", "hang"], timeout=1.0)
    assert time.monotonic() - started < 10


def test_git_never_prompts_for_credentials(tmp_path: Path) -> None:
    runner = GitRunner(str(tmp_path))
    result = runner.output(["var", "GIT_EDITOR"])
    assert result.stdout.decode().strip() == "/bin/false"


def git_children() -> list[int]:
    """Our child processes that are git (a leaked `git cat-file --batch` would show up here)."""
    import os

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == os.getpid() and comm.startswith("git"):
            found.append(int(entry.name))
    return found


def test_no_git_process_outlives_its_command(tmp_path: Path) -> None:
    from reconciler.source.gitsource import GitSource
    from reconciler.source.mirror import Mirror
    from tests.source.gitrepo import WorkRepo

    repo = WorkRepo(tmp_path / "repo")
    source = GitSource(Mirror(tmp_path / "state", repo.url, "main"), tmp_path / "state",
                       loader=lambda d: (d / "f").read_text())
    for index in range(5):
        repo.commit(f"c{index}", {"f": str(index)})
        source.mirror.fetch()
        view = source.evaluate(float(index))
        assert view.in_force is not None
        assert view.in_force.cluster == str(index)
    assert git_children() == []


# What git and OpenSSH 9.2 print when the server's host key no longer matches known_hosts.
CHANGED_HOST_KEY = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
Host key verification failed.
fatal: Could not read from remote repository.

Please make sure you have the correct access rights
and the repository exists.
"""


def test_the_essence_of_a_changed_host_key_is_the_warning_not_its_frame() -> None:
    from reconciler.source.errors import essence

    said = essence(CHANGED_HOST_KEY)
    assert said.startswith("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!; IT IS POSSIBLE")
    assert "@" not in said
    assert essence("git@example.org: Permission denied (publickey).\nfatal: Could not read from remote repository.\n"
                   "\nPlease make sure you have the correct access rights\nand the repository exists.\n") == (
        "git@example.org: Permission denied (publickey).; fatal: Could not read from remote repository.")
