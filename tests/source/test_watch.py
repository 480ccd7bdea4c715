"""A commit to a repository on this machine is noticed within a second (inotify, no polling)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from reconciler.source.watch import RefWatcher, local_git_dir
from tests.source.gitrepo import WorkRepo


@pytest.mark.parametrize("bare", [True, False])
def test_a_new_commit_is_noticed_within_a_second(tmp_path: Path, bare: bool) -> None:
    repo = WorkRepo(tmp_path / "repo", bare_server=bare)
    repo.commit("first", {"a": "1"})
    git_dir = local_git_dir(repo.url)
    assert git_dir is not None
    changed = threading.Event()
    watcher = RefWatcher(git_dir, changed.set)
    # watchdog adds the inotify watches in start() itself (before its thread runs), so no settling time is
    # needed: the commit below is seen, and nothing has touched the repository since the first commit.
    watcher.start()
    try:
        assert not changed.is_set()
        committed = time.monotonic()
        repo.commit("second", {"a": "2"})
        assert changed.wait(1.0), "no ref change noticed within a second"
        assert time.monotonic() - committed < 1.5
    finally:
        watcher.stop()


def test_remote_urls_are_not_local(tmp_path: Path) -> None:
    assert local_git_dir("https://git.example.org/infra.git") is None
    assert local_git_dir("git@git.example.org:infra.git") is None
    assert local_git_dir(str(tmp_path / "nothing")) is None
