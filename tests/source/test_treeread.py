"""A revision is read from the object store as committed: attributes cannot hide or rewrite files, and what
cannot be read as plain files is refused like an invalid revision, with the reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reconciler.desired.safefs import MAX_FILE_BYTES
from reconciler.source.errors import SourceError
from reconciler.source.gitsource import GitSource
from reconciler.source.mirror import Mirror
from tests.source.gitrepo import WorkRepo, git


def listing_loader(directory: Path) -> dict[str, str]:
    """Stands in for the schema: every exported file and its text."""
    found = {}
    for path in sorted(directory.rglob("*")):
        assert not path.is_symlink(), f"{path} is a link in the export"
        if path.is_file():
            found[path.relative_to(directory).as_posix()] = path.read_text()
    return found


def make_source(tmp_path: Path, repo: WorkRepo, subdir: str = "") -> GitSource:
    state = tmp_path / "state"
    return GitSource(Mirror(state, repo.url, "main"), state, subdir=subdir, loader=listing_loader)


@pytest.fixture
def repo(tmp_path: Path) -> WorkRepo:
    return WorkRepo(tmp_path / "repo")


def test_export_attributes_neither_hide_nor_rewrite_files(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("attrs", {"cluster.yaml": "cluster: c\n", "vms/vm1.yaml": "id: 1 # $Format:%H$\n",
                          "vms/vm2.yaml": "id: 2\n",
                          ".gitattributes": "vms/vm2.yaml export-ignore\nvms/vm1.yaml export-subst\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is not None
    assert view.in_force.cluster["vms/vm2.yaml"] == "id: 2\n"
    assert view.in_force.cluster["vms/vm1.yaml"] == "id: 1 # $Format:%H$\n"


def test_a_link_leaving_the_tree_is_refused_with_its_reason_and_the_last_good_stays(tmp_path: Path,
                                                                                   repo: WorkRepo) -> None:
    good = repo.commit("good", {"cluster.yaml": "cluster: c\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    source.evaluate(1.0)
    (repo.work / "vms").mkdir()
    os.symlink("/etc/shadow", repo.work / "vms" / "evil.yaml")
    os.symlink("../../../../../etc", repo.work / "vms" / "up")
    bad = repo.commit("links")
    source.mirror.fetch()
    view = source.evaluate(2.0)
    assert view.in_force is not None
    assert view.in_force.info.sha == good
    assert view.attempted is not None
    assert view.attempted.sha == bad
    assert view.invalid_errors == (
        "vms/evil.yaml: is a symbolic link in the commit; the desired state is read from regular files only "
        "(commit the file itself)",
        "vms/up: is a symbolic link in the commit; the desired state is read from regular files only "
        "(commit the file itself)")
    assert source.evaluate(3.0).invalid_errors == view.invalid_errors  # judged once, not a crash every pass


def test_links_outside_the_desired_state_are_left_out(tmp_path: Path, repo: WorkRepo) -> None:
    (repo.work / "docs").mkdir()
    os.symlink("/etc/passwd", repo.work / "docs" / "passwd")
    repo.commit("docs", {"cluster.yaml": "cluster: c\n", "docs/readme.md": "hello\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is not None
    assert view.in_force.cluster == {"cluster.yaml": "cluster: c\n", "docs/readme.md": "hello\n"}


def test_a_desired_state_path_that_is_a_link_is_refused(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("real", {"real/cluster.yaml": "cluster: c\n"})
    os.symlink("real", repo.work / "prod")
    repo.commit("prod is a link")
    source = make_source(tmp_path, repo, subdir="prod")
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is None
    assert view.invalid_errors == ("prod: the desired-state path is a blob (a file or a symbolic link) in this "
                                   "revision; it must be a directory",)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("big", {"cluster.yaml": "cluster: c\n", "vms/big.yaml": "#" * (MAX_FILE_BYTES + 1)})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is None
    assert view.invalid_errors == (f"vms/big.yaml: the file has {MAX_FILE_BYTES + 1} bytes, more than the "
                                   f"{MAX_FILE_BYTES} a desired-state file may have",)


def test_a_submodule_in_the_desired_state_is_refused(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("base", {"cluster.yaml": "cluster: c\n"})
    sha = repo.head()
    git(repo.work, "update-index", "--add", "--cacheinfo", f"160000,{sha},vms/sub")
    git(repo.work, "commit", "-q", "-m", "submodule")
    git(repo.work, "push", "-q", "--force", "origin", "main")
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is None
    assert view.invalid_errors == ("vms/sub: is a submodule in the commit; the desired state is read from regular "
                                   "files only (commit the file itself)",)


def test_exported_files_are_private(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("one", {"cluster.yaml": "cluster: c\n", "vms/a/vm1.yaml": "id: 1\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is not None
    assert (view.in_force.directory / "cluster.yaml").stat().st_mode & 0o777 == 0o600
    assert (view.in_force.directory / "vms" / "a").stat().st_mode & 0o777 == 0o700


def test_a_commit_subject_reaches_status_escaped(tmp_path: Path, repo: WorkRepo) -> None:
    repo.commit("\x1b[2J\x1b[32mall good\u202e", {"cluster.yaml": "cluster: c\n"})
    source = make_source(tmp_path, repo)
    source.mirror.fetch()
    view = source.evaluate(1.0)
    assert view.in_force is not None
    assert view.in_force.info.summary == "\\x1b[2J\\x1b[32mall good\\u202e"


def test_a_fetch_larger_than_the_limit_is_stopped_and_the_revision_in_force_stays(tmp_path: Path,
                                                                                 repo: WorkRepo) -> None:
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    good = repo.commit("good", {"cluster.yaml": "cluster: c\n"})
    state = tmp_path / "state"
    mirror = Mirror(state, repo.url, "main", max_fetch_bytes=1_000_000)
    assert mirror.fetch() == good
    (repo.work / "docs").mkdir()
    (repo.work / "docs" / "huge.bin").write_bytes(os.urandom(3_000_000))  # incompressible: 3 MB on the wire
    repo.commit("huge")
    for _ in range(2):  # each failed fetch cleans up after itself: nothing accumulates
        with pytest.raises(SourceError, match="the server sent a file larger than 1000000 bytes"):
            mirror.fetch()
        assert mirror.tip() == good
        assert list((mirror.path / "objects" / "pack").glob("tmp_*")) == []
    assert sum(f.stat().st_size for f in mirror.path.rglob("*") if f.is_file()) < 1_000_000
