"""The fetcher: new tips wake the loop, an unreachable remote backs off and recovers."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from reconciler.daemon.schedule.fetcher import Fetcher
from reconciler.source.mirror import Mirror
from tests.source.gitrepo import WorkRepo


def test_backoff_while_unreachable_then_recovery(tmp_path: Path) -> None:
    repo = WorkRepo(tmp_path / "repo")
    sha = repo.commit("one", {"a": "1"})
    tips: list[str] = []
    errors: list[str] = []
    fetcher = Fetcher(Mirror(tmp_path / "state", repo.url, "main"), interval=10, jitter=0.1, on_new_tip=tips.append,
                      on_error=errors.append, monotonic=lambda: 0.0, rng=random.Random(3))  # noqa: S311
    assert 9 <= fetcher.fetch_once() <= 11
    assert tips == [sha]
    assert fetcher.fetched_ok.is_set()
    assert fetcher.fetch_once() <= 11
    assert tips == [sha]  # unchanged tip: no wake-up
    assert repo.server is not None
    moved = repo.server.with_name("moved.git")
    repo.server.rename(moved)
    delays = [fetcher.fetch_once() for _ in range(4)]
    assert delays == sorted(delays)
    assert delays[-1] > delays[0] * 4
    assert len(errors) == 4
    assert "retry in" in errors[0]
    moved.rename(repo.server)
    second = repo.commit("two", {"a": "2"})
    assert fetcher.fetch_once() <= 11
    assert tips == [sha, second]
    shutil.rmtree(tmp_path / "state")
