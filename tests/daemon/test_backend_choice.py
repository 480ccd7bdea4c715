"""The node's pair of backends, remembered in the state directory from the revision the daemon applies: the
daemon's watchers and first observation, fence-peer and the split-brain handler use it, and a record naming a
backend this program does not have is an error naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.registry import DEFAULT_BACKENDS
from reconciler.cli.main import main
from reconciler.daemon.loop.config import DaemonConfig
from reconciler.daemon.loop.runtime import Daemon
from reconciler.daemon.records.backend_choice import (
    BackendChoiceError,
    choice_path,
    node_choice,
    read_names,
    write_choice,
)
from reconciler.model.desired import DesiredNode, NodeBackends
from reconciler.observe.observer import Observer
from tests.apply.fakes import FakeHost
from tests.daemon import other_backends
from tests.daemon.fakes import FakeEngine
from tests.daemon.test_network_attacks import wait_for
from tests.observe.scripted import Answer, full_node
from tests.source.gitrepo import WorkRepo

pytestmark = pytest.mark.timeout(60)

DRBD_XL = ("drbdsetup", "drbdadm", "xl")


# -- the record ------------------------------------------------------------------------------------


def test_nothing_recorded_means_the_defaults(tmp_path: Path) -> None:
    choice = node_choice(tmp_path)
    assert (choice.recorded, choice.names, choice.backends) == (False, NodeBackends(), DEFAULT_BACKENDS)


def test_a_recorded_pair_is_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = other_backends.register(monkeypatch)
    write_choice(tmp_path, other_backends.OTHER_NAMES)
    assert json.loads(choice_path(tmp_path).read_text()) == {"hypervisor": "other", "replicator": "other"}
    assert choice_path(tmp_path).stat().st_mode & 0o777 == 0o600
    choice = node_choice(tmp_path)
    assert (choice.recorded, choice.backends) == (True, other)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"hypervisor": "xen", "replicator": "nbd"}', "unknown replicator 'nbd' (this reconciler has: drbd)"),
    ('{"hypervisor": "kvm", "replicator": "drbd"}', "unknown hypervisor 'kvm' (this reconciler has: xen)"),
    ('{"hypervisor": "xen"}', "expected an object with exactly the keys hypervisor and replicator"),
    ('{"hypervisor": "xen", "replicator": 3}', "replicator is 3, not a backend's name"),
    ("hypervisor=xen", "not JSON"),
])
def test_a_record_this_program_cannot_use_is_an_error_naming_the_file(tmp_path: Path, text: str,
                                                                      expected: str) -> None:
    choice_path(tmp_path).write_text(text)
    with pytest.raises(BackendChoiceError) as caught:
        read_names(tmp_path)
    assert str(caught.value).startswith(f"{choice_path(tmp_path)}: ")
    assert expected in str(caught.value)


def test_an_unregistered_pair_is_never_written(tmp_path: Path) -> None:
    with pytest.raises(BackendChoiceError, match="unknown hypervisor 'other'"):
        write_choice(tmp_path, other_backends.OTHER_NAMES)
    assert not choice_path(tmp_path).exists()


# -- the observer -----------------------------------------------------------------------------------


def test_the_observer_runs_the_shared_providers_and_the_nodes_pair_only(monkeypatch: pytest.MonkeyPatch) -> None:
    other = other_backends.register(monkeypatch)
    host = full_node()
    host.answers[other_backends.REPLICATOR_FACTS.argv] = Answer("")
    host.answers[other_backends.HYPERVISOR_FACTS.argv] = Answer("")
    observer = Observer(host, backends=other)
    _ = observer.versions
    calls = len(host.calls)
    observed = observer.observe()
    ran = host.calls[calls:]
    assert [argv[0] for argv in ran] == ["vgs", "lvs", "dmsetup", "dmsetup", "other-repl", "other-hv"]
    assert [t.name for t in observed.tools] == ["lvm", "dmsetup", "other-repl", "other-hv", "files"]
    assert not [argv for argv in ran if argv[0] in DRBD_XL]
    # Told the classic pair, the same observer runs DRBD's and Xen's providers in their place.
    observer.use_backends(DEFAULT_BACKENDS)
    calls = len(host.calls)
    observer.observe()
    tools = [argv[0] for argv in host.calls[calls:]]
    assert "xl" in tools
    assert "drbdsetup" in tools
    assert "other-repl" not in tools


# -- the daemon -------------------------------------------------------------------------------------


class PairEngine(FakeEngine):
    """Expands to a node that names ``pair`` (the classic one unless set)."""

    pair: NodeBackends = NodeBackends()

    def expand(self, cluster: Any, node: str) -> DesiredNode:
        return super().expand(cluster, node).model_copy(update={"backends": self.pair})


def _daemon(tmp_path: Path, engine: FakeEngine, host: FakeHost) -> Daemon:
    repo = WorkRepo(tmp_path / "repo", bare_server=False)
    repo.commit("one", {"vms.txt": "vm100\n"})
    config = DaemonConfig(node="erdbeere", repo=str(repo.work), state_dir=tmp_path / "state", fetch_interval=3600,
                          drift_interval=3600, metrics_address=None, drbd_events=True, drbd_poll=0.05,
                          boot_fetch_timeout=0)
    return Daemon(config, host=host, engine=engine,
                  loader=lambda directory: tuple((directory / "vms.txt").read_text().split()))  # type: ignore[arg-type,return-value]


def test_the_daemon_watches_with_the_recorded_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = other_backends.register(monkeypatch)
    write_choice(tmp_path / "state", other_backends.OTHER_NAMES)
    host = FakeHost()
    engine = PairEngine()
    daemon = _daemon(tmp_path, engine, host)
    assert daemon.drbd_watch is not None
    assert daemon.domain_watch is not None
    assert daemon.drbd_watch.replicator is other.replicator
    assert daemon.domain_watch.hypervisor is other.hypervisor
    assert engine.backends_used == [other]
    daemon.drbd_watch.check_once()
    daemon.domain_watch.check_once()
    assert host.calls == [other_backends.REPLICATOR_WATCH, other_backends.HYPERVISOR_WATCH]
    assert not [argv for argv in host.calls if argv[0] in DRBD_XL]


def test_without_a_record_the_daemon_uses_the_defaults_and_says_so(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    engine = PairEngine()
    with caplog.at_level("INFO", logger="reconciler"):
        daemon = _daemon(tmp_path, engine, FakeHost())
    assert daemon.drbd_watch is not None
    assert daemon.domain_watch is not None
    assert daemon.drbd_watch.replicator is DEFAULT_BACKENDS.replicator
    assert daemon.domain_watch.hypervisor is DEFAULT_BACKENDS.hypervisor
    assert engine.backends_used == [DEFAULT_BACKENDS]
    assert "backends.default" in caplog.text
    # The first pass that applies a revision records its pair.
    daemon.fetcher.fetch_once()
    daemon.run_one_pass(frozenset({"start"}))
    assert daemon.reconciler.planned is not None
    assert read_names(tmp_path / "state") == NodeBackends()


def test_an_unusable_record_stops_the_daemon_with_the_files_name(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    choice_path(state).write_text('{"hypervisor": "xen", "replicator": "nbd"}')
    with pytest.raises(BackendChoiceError, match=f"{choice_path(state)}: unknown replicator 'nbd'"):
        _daemon(tmp_path, PairEngine(), FakeHost())


def test_the_watchers_restart_with_the_pair_a_new_revision_names(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    other = other_backends.register(monkeypatch)
    write_choice(tmp_path / "state", other_backends.OTHER_NAMES)
    host = FakeHost()
    engine = PairEngine()  # the revision names the classic pair
    daemon = _daemon(tmp_path, engine, host)
    old_drbd, old_domain = daemon.drbd_watch, daemon.domain_watch
    assert old_drbd is not None
    assert old_domain is not None
    daemon.start()
    try:
        assert wait_for(lambda: daemon.choice.names == NodeBackends(), 10)
        # The other pair's watchers were stopped (and joined) when the choice changed; the new ones poll.
        assert old_drbd._stop.is_set()
        assert old_domain._stop.is_set()
        assert old_drbd._thread is not None
        assert not old_drbd._thread.is_alive()
        assert old_domain._thread is not None
        assert not old_domain._thread.is_alive()
        assert wait_for(lambda: DEFAULT_BACKENDS.replicator.watch_argv() in host.calls, 10)
        assert wait_for(lambda: DEFAULT_BACKENDS.hypervisor.watch_argv() in host.calls, 10)
    finally:
        daemon.stop()
    assert read_names(tmp_path / "state") == NodeBackends()
    assert daemon.drbd_watch is not None
    assert daemon.domain_watch is not None
    assert daemon.drbd_watch is not old_drbd
    assert daemon.drbd_watch.replicator is DEFAULT_BACKENDS.replicator
    assert daemon.domain_watch.hypervisor is DEFAULT_BACKENDS.hypervisor
    assert engine.backends_used == [other, DEFAULT_BACKENDS]


# -- the handlers -----------------------------------------------------------------------------------


def test_fence_peer_answers_in_the_recorded_replicators_terms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    other_backends.register(monkeypatch)
    state = tmp_path / "state"
    write_choice(state, other_backends.OTHER_NAMES)
    monkeypatch.setenv("DRBD_RESOURCE", "vm100")  # DRBD's variable means nothing to the other replicator
    monkeypatch.setenv("OTHER_RESOURCE", "../etc")
    code = main(["fence-peer", "--env-file", str(tmp_path / "absent.env"), "--state-dir", str(state),
                 "--node", "erdbeere", "--peer-auth", "none"])
    err = capsys.readouterr().err
    assert code == other_backends.EXIT_CODES["not-fenced"]
    assert "refusing: DRBD_RESOURCE" in err  # the name it read, ../etc, is refused before anything is asked
    assert f"exit {code}" in err


def test_fence_peer_with_an_unusable_record_fences_nothing_and_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    choice_path(state).write_text('{"hypervisor": "xen", "replicator": "nbd"}')
    monkeypatch.setenv("DRBD_RESOURCE", "vm100")
    code = main(["fence-peer", "--env-file", str(tmp_path / "absent.env"), "--state-dir", str(state),
                 "--node", "erdbeere", "--peer-auth", "none"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == (f"reconciler fence-peer: vm100: {choice_path(state)}: unknown replicator 'nbd' (this reconciler "
                   "has: drbd); the last revision applied on this node chose it: install the reconciler that has "
                   "it, or remove the file to use the defaults until the daemon applies a revision again; exit 1")


def test_fence_peer_without_a_record_says_it_answers_as_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("DRBD_RESOURCE", "../etc")
    code = main(["fence-peer", "--env-file", str(tmp_path / "absent.env"), "--state-dir", str(state),
                 "--node", "erdbeere", "--peer-auth", "none"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert lines[0] == (f"reconciler fence-peer: no backends recorded in {state} yet: answering as the default "
                        "replicator (drbd)")
    assert lines[1].startswith("reconciler fence-peer: ../etc: refusing: DRBD_RESOURCE:")


def test_the_split_brain_handler_records_through_the_recorded_replicator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    other = other_backends.register(monkeypatch)
    state = tmp_path / "state"
    write_choice(state, other_backends.OTHER_NAMES)
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(state))
    monkeypatch.setenv("OTHER_RESOURCE", "vm7")
    assert main(["split-brain"]) == 0
    replicator = other.replicator
    assert isinstance(replicator, other_backends.OtherReplicator)
    assert [env["OTHER_RESOURCE"] for env in replicator.recorded] == ["vm7"]
    assert "split brain on vm7 with himbeere recorded" in capsys.readouterr().err


def test_the_split_brain_handler_with_an_unusable_record_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    choice_path(state).write_text("{}")
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(state))
    monkeypatch.setenv("DRBD_RESOURCE", "vm7")
    assert main(["split-brain"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"reconciler split-brain: could not record the split brain: {choice_path(state)}: ")


def test_a_one_shot_plan_observes_with_the_pair_its_desired_node_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.apply.oneshot import observe_and_plan
    from tests.daemon.fakes import desired_node

    other_backends.register(monkeypatch)
    host = FakeHost()
    desired = desired_node().model_copy(update={"backends": other_backends.OTHER_NAMES})
    step = observe_and_plan(host, desired, observer=Observer(host))
    ran = [argv[0] for argv in host.calls]
    assert "other-repl" in ran
    assert "other-hv" in ran
    assert [t.name for t in step.observed.tools][-3:] == ["other-repl", "other-hv", "files"]
    assert not [tool for tool in ran if tool in ("drbdsetup", "xl")]
