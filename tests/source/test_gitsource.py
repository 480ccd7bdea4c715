"""The git source against real repositories: new commits, last known good, force-push refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.source.errors import GitFailed, SourceError
from reconciler.source.gitcmd import GitRunner
from reconciler.source.gitsource import GitSource, InvalidRevision
from reconciler.source.mirror import Mirror
from tests.source.gitrepo import WorkRepo


def fake_loader(directory: Path) -> str:
    """Stands in for the schema: the cluster is the text of cluster.txt; 'invalid' fails at line 2."""
    text = (directory / "cluster.txt").read_text()
    if "invalid" in text:
        raise InvalidRevision((f"{directory.name}/cluster.txt:2:1: 'invalid' is not a cluster (hint: fix it)",))
    return text


def make_source(tmp_path: Path, repo: WorkRepo, *, subdir: str = "") -> GitSource:
    state = tmp_path / "state"
    return GitSource(Mirror(state, repo.url, "main"), state, subdir=subdir, loader=fake_loader)


@pytest.fixture
def repo(tmp_path: Path) -> WorkRepo:
    return WorkRepo(tmp_path / "repo")


def test_new_commit_becomes_the_revision_in_force(tmp_path: Path, repo: WorkRepo) -> None:
    first = repo.commit("first", {"cluster.txt": "one\n"})
    source = make_source(tmp_path, repo)
    assert source.evaluate(1.0).in_force is None  # nothing fetched yet
    assert source.mirror.fetch() == first
    view = source.evaluate(2.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == first
    assert view.in_force.cluster == "one\n"
    assert view.in_force.info.summary == "first"
    second = repo.commit("second", {"cluster.txt": "two\n"})
    source.mirror.fetch()
    view = source.evaluate(3.0)
    assert view.in_force is not None
    assert (view.in_force.info.sha, view.in_force.cluster) == (second, "two\n")
    assert view.in_force.info.seen_at == 3.0
    assert not view.refusal
    assert not view.invalid_errors


def test_invalid_revision_keeps_the_last_good_one_and_says_where(tmp_path: Path, repo: WorkRepo) -> None:
    good = repo.commit("good", {"cluster.txt": "good\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    source.evaluate(1.0)
    bad = repo.commit("bad", {"cluster.txt": "x\ninvalid\n"})
    source.mirror.fetch()
    view = source.evaluate(2.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == good
    assert view.attempted is not None
    assert view.attempted.sha == bad
    assert view.invalid_errors == (f"{bad}/cluster.txt:2:1: 'invalid' is not a cluster (hint: fix it)",)
    fixed = repo.commit("fix", {"cluster.txt": "fixed\n"})
    source.mirror.fetch()
    view = source.evaluate(3.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == fixed
    assert view.invalid_errors == ()


def test_force_push_is_refused_until_that_commit_is_allowed(tmp_path: Path, repo: WorkRepo) -> None:
    base = repo.commit("base", {"cluster.txt": "base\n"})
    applied = repo.commit("applied", {"cluster.txt": "applied\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    assert source.evaluate(1.0).in_force is not None
    repo.reset_hard(base)
    rewritten = repo.commit("rewritten history", {"cluster.txt": "rewritten\n"})
    assert source.mirror.fetch() == rewritten
    view = source.evaluate(2.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == applied
    assert "does not descend" in view.refusal
    assert rewritten in view.refusal  # the refusal names the exact command argument to allow it
    # Allowing another commit does not unlock this one.
    assert "does not descend" in source.evaluate(3.0, frozenset({base})).refusal
    view = source.evaluate(4.0, frozenset({rewritten}))
    assert view.in_force is not None
    assert view.in_force.info.sha == rewritten
    assert view.refusal == ""


def test_rollback_to_an_ancestor_is_refused_too(tmp_path: Path, repo: WorkRepo) -> None:
    old = repo.commit("old", {"cluster.txt": "old\n"})
    repo.commit("new", {"cluster.txt": "new\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    source.evaluate(1.0)
    repo.reset_hard(old)
    repo.commit("noop", push=False)
    repo.reset_hard(old)
    from tests.source.gitrepo import git

    git(repo.work, "push", "-q", "--force", "origin", "main")
    source.mirror.fetch()
    view = source.evaluate(2.0)
    assert "does not descend" in view.refusal


def test_restart_restores_the_revision_in_force(tmp_path: Path, repo: WorkRepo) -> None:
    sha = repo.commit("one", {"cluster.txt": "one\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    source.evaluate(1.0)
    again = make_source(tmp_path, repo)
    view = again.evaluate(5.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == sha
    assert view.in_force.cluster == "one\n"


def test_subdirectory_only_is_exported(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("nested", {"clusters/prod/cluster.txt": "prod\n", "README": "not desired state\n"})
    source = make_source(tmp_path, repo, subdir="clusters/prod")
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is not None
    assert view.in_force.cluster == "prod\n"
    assert not (view.in_force.directory / "README").exists()


def test_unreachable_remote_raises_and_keeps_the_revision_in_force(tmp_path: Path, repo: WorkRepo) -> None:
    sha = repo.commit("one", {"cluster.txt": "one\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    source.evaluate(1.0)
    assert repo.server is not None
    repo.server.rename(repo.server.with_name("moved.git"))
    with pytest.raises(GitFailed):
        source.mirror.fetch()
    view = source.evaluate(2.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == sha


@pytest.mark.parametrize("bad", ["-upload-pack=evil", "--help"])
def test_option_like_repository_is_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SourceError):
        Mirror(tmp_path, bad, "main")


@pytest.mark.parametrize("bad", ["../etc", "-x", "a..b", "main.lock"])
def test_bad_branch_is_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SourceError):
        Mirror(tmp_path, "/srv/repo", bad)


def strict_loader(directory: Path) -> str:
    """As the schema does: an empty file is not a cluster."""
    text = (directory / "cluster.txt").read_text()
    if not text:
        raise InvalidRevision(("cluster.txt:1:1: the file is empty (hint: write the settings as a YAML mapping)",))
    return text


def strict_source(tmp_path: Path, repo: WorkRepo) -> GitSource:
    state = tmp_path / "state"
    return GitSource(Mirror(state, repo.url, "main"), state, loader=strict_loader)


def test_a_torn_export_of_the_revision_in_force_is_read_again_from_git(tmp_path: Path, repo: WorkRepo) -> None:
    # What a power loss soon after an export left on the lab's nodes (before exports were flushed): the renamed
    # directory with empty files. The revision is git's objects, not that copy.
    sha = repo.commit("one", {"cluster.txt": "one\n"})
    source = strict_source(tmp_path, repo)
    source.mirror.fetch()
    source.evaluate(1.0)
    exported = tmp_path / "state" / "revisions" / sha / "cluster.txt"
    exported.write_text("")
    view = strict_source(tmp_path, repo).evaluate(5.0)
    assert view.in_force is not None
    assert (view.in_force.info.sha, view.in_force.cluster) == (sha, "one\n")
    assert not view.invalid_errors
    assert exported.read_text() == "one\n"


def test_a_torn_export_of_a_new_revision_is_read_again_before_it_is_judged(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("one", {"cluster.txt": "one\n"})
    source = strict_source(tmp_path, repo)
    source.mirror.fetch()
    source.evaluate(1.0)
    second = repo.commit("two", {"cluster.txt": "two\n"})
    source.mirror.fetch()
    torn = tmp_path / "state" / "revisions" / second
    torn.mkdir(parents=True)
    (torn / "cluster.txt").write_text("")
    view = strict_source(tmp_path, repo).evaluate(5.0)
    assert view.in_force is not None
    assert (view.in_force.info.sha, view.in_force.cluster) == (second, "two\n")
    assert not view.invalid_errors


def test_an_export_is_on_disk_before_it_becomes_visible(tmp_path: Path, repo: WorkRepo,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sha = repo.commit("one", {"cluster.txt": "one\n", "vms/vm100.txt": "vm\n"})
    source = strict_source(tmp_path, repo)
    source.mirror.fetch()
    synced: list[str] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    assert source.evaluate(1.0).in_force is not None
    revisions = tmp_path / "state" / "revisions"
    staged = revisions / f"{sha}.tmp"
    # Each file and each directory while still staged (before the rename), then the directory holding the rename.
    for path in (staged / "cluster.txt", staged / "vms" / "vm100.txt", staged / "vms", staged):
        assert str(path) in synced, f"{path} was not flushed: {synced}"
    renamed_at = synced.index(str(revisions))
    assert all(str(staged) in p for p in synced[:renamed_at] if str(revisions) in p), synced
    assert (revisions / sha / "cluster.txt").read_text() == "one\n"


def test_git_flushes_what_it_fetches(tmp_path: Path) -> None:
    # The daemon's git commands carry the setting in their environment: no repository or system config needed.
    runner = GitRunner(str(tmp_path))
    out = runner.output(["config", "--get", "core.fsync"])
    assert out.stdout.decode().strip() == "all"
    assert runner.output(["config", "--get", "core.fsyncMethod"]).stdout.decode().strip() == "fsync"
