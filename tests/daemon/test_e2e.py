"""End to end: two real daemon processes on one simulated cluster, following a git repository the test
commits to: bring-up, a change, an invalid commit, a fix, a force-push, suspend/resume, a node reboot."""

from __future__ import annotations

import time

import pytest

from reconciler.cli.main import main
from reconciler.sim.demo import DemoCluster
from reconciler.sim.demo_cli import NEW_VM

# A deadline, not a pause: the bring-up's initial resync alone takes about 60 s of wall time on a loaded
# two-core machine (the simulator's clock runs at 60x), so each step gets room well beyond that.
STEP_TIMEOUT = 180.0


def state_dir(cluster: DemoCluster, node: str) -> str:
    return str(cluster.procs[node].state_dir)


def sim_state(cluster: DemoCluster) -> dict:  # type: ignore[type-arg]
    from reconciler.sim.state import SimCluster

    return SimCluster(cluster.sim).read()


def running(cluster: DemoCluster, node: str) -> set[str]:
    return set(sim_state(cluster)["nodes"][node].get("domains") or {})


def converge(cluster: DemoCluster, sha: str, what: str, since: float = 0.0, passed: str | None = None) -> None:
    """Every node converged at ``sha``, in a pass that ended after ``since`` (only node ``passed``'s, if given:
    the others may have nothing to pass again for)."""
    ok = cluster.wait_for(lambda: all(cluster.converged(n, sha, since=since if passed in (None, n) else 0.0)
                                      for n in cluster.nodes), STEP_TIMEOUT)
    if not ok:
        logs = "\n".join(f"--- {n}\n{cluster.log_tail(n, 40)}" for n in cluster.nodes)
        pytest.fail(f"{what}: the nodes did not converge at {sha[:12]}\n{logs}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_two_daemons_follow_the_repository_through_everything(cluster: DemoCluster) -> None:
    first = cluster.git("rev-parse", "HEAD")
    cluster.start()
    converge(cluster, first, "bring-up")
    assert running(cluster, "erdbeere") == {"vm100"}
    assert running(cluster, "himbeere") == {"vm101"}

    # A change: a new VM.
    second = cluster.commit("Add vm102", {"vms/vm102.yaml": NEW_VM})
    converge(cluster, second, "new VM")
    assert running(cluster, "erdbeere") == {"vm100", "vm102"}

    # Online growth: both nodes extend, and `drbdadm resize` runs once both applied the revision.
    grown = (cluster.repo / "vms/vm101.yaml").read_text().replace("size: 20G", "size: 30G")
    assert "size: 30G" in grown
    second = cluster.commit("Grow vm101", {"vms/vm101.yaml": grown})
    converge(cluster, second, "growth")

    # An invalid commit: refused with file:line, the last good revision stays in force.
    broken = (cluster.repo / "vms/vm102.yaml").read_text().replace("size: 10G", "size: lots")
    bad = cluster.commit("Break vm102", {"vms/vm102.yaml": broken})
    for node in cluster.nodes:
        assert cluster.wait_for(lambda n=node: bool((s := cluster.status(n)) and s.invalid_errors), STEP_TIMEOUT)
        status = cluster.status(node)
        assert status is not None
        assert status.last_applied is not None
        assert status.last_applied.sha == second
        assert status.last_attempted is not None
        assert status.last_attempted.sha == bad
        assert any("vm102.yaml:" in e for e in status.invalid_errors), status.invalid_errors

    # The fix converges.
    fixed = cluster.commit("Fix vm102", {"vms/vm102.yaml": NEW_VM.replace("memory: 1G", "memory: 1G\n")})
    converge(cluster, fixed, "fix")
    for node in cluster.nodes:
        status = cluster.status(node)
        assert status is not None
        assert status.invalid_errors == ()

    # A force-push (history rewritten under the applied revision) is refused until allowed.
    cluster.git("reset", "-q", "--hard", second)
    rewritten = cluster.commit("Rewritten history", {"README": "rewritten\n"})
    for node in cluster.nodes:
        assert cluster.wait_for(lambda n=node: bool((s := cluster.status(n)) and s.pending_refusal), STEP_TIMEOUT)
        status = cluster.status(node)
        assert status is not None
        assert "does not descend" in status.pending_refusal
        assert status.last_applied is not None
        assert status.last_applied.sha == fixed
    for node in cluster.nodes:
        assert main(["allow-revision", rewritten, "--state-dir", state_dir(cluster, node)]) == 0
    converge(cluster, rewritten, "allowed force-push")

    # Suspend one node: it keeps observing, but does not act on the next revision; resume catches up.
    assert main(["suspend", "--reason", "e2e maintenance", "--state-dir", state_dir(cluster, "erdbeere")]) == 0
    assert cluster.wait_for(lambda: bool((s := cluster.status("erdbeere")) and s.suspensions), STEP_TIMEOUT)
    third = cluster.commit("Add vm103 while erdbeere is suspended", {
        "vms/vm103.yaml": NEW_VM.replace("id: 102", "id: 103").replace("minor: 2", "minor: 3")
        .replace("port: 7790", "port: 7791").replace("01:02", "01:03").replace("VM 102", "VM 103")})
    assert cluster.wait_for(lambda: cluster.converged("himbeere", third) or bool(
        (s := cluster.status("himbeere")) and s.last_applied and s.last_applied.sha == third), STEP_TIMEOUT)
    # erdbeere has seen the new revision and passed over it, suspended.
    assert cluster.wait_for(lambda: bool(
        (s := cluster.status("erdbeere")) and s.last_attempted and s.last_attempted.sha == third
        and s.last_pass and s.last_pass.outcome == "suspended"), STEP_TIMEOUT)
    status = cluster.status("erdbeere")
    assert status is not None
    assert status.last_pass is not None
    assert status.last_pass.outcome == "suspended"
    assert status.suspensions[0].reason == "e2e maintenance"
    assert "vm103" not in running(cluster, "erdbeere")
    assert main(["resume", "--state-dir", state_dir(cluster, "erdbeere")]) == 0
    converge(cluster, third, "resume")
    assert running(cluster, "erdbeere") == {"vm100", "vm102", "vm103"}

    # Restarting a daemon touches nothing: no mutating command at all, the domains keep running.
    from reconciler.sim.state import SimCluster

    assert cluster.stop_node("erdbeere") == 0
    log_mark = len(SimCluster(cluster.sim).read_log())
    restarted = time.time()
    cluster.start_node("erdbeere")
    # himbeere runs a pass only when something changes: its peer poll may not even notice so short an absence.
    converge(cluster, third, "daemon restart", since=restarted, passed="erdbeere")
    after = SimCluster(cluster.sim).read_log()[log_mark:]
    assert [e["argv"] for e in after if e["node"] == "erdbeere" and e["mutating"]] == []
    assert running(cluster, "erdbeere") == {"vm100", "vm102", "vm103"}

    # A simulated reboot of himbeere: its daemon dies with the node; after boot it comes back and
    # recreates what vanished, starting vm101 again only after it has fetched and seen its peer.
    from reconciler.sim import faults

    cluster.kill_node("himbeere")
    with SimCluster(cluster.sim).transaction() as state:
        faults.reboot(state, "himbeere")
    assert running(cluster, "himbeere") == set()
    restarted = time.time()
    cluster.start_node("himbeere")
    converge(cluster, third, "after reboot", since=restarted)
    status = cluster.status("himbeere")
    assert status is not None
    assert status.last_pass is not None
    assert running(cluster, "himbeere") == {"vm101"}
    assert running(cluster, "erdbeere") == {"vm100", "vm102", "vm103"}
    from reconciler.sim import oracle

    assert oracle.check(sim_state(cluster)) == []

    # SIGHUP asks for a pass at once.
    import signal

    erdbeere = cluster.procs["erdbeere"].process
    assert erdbeere is not None
    erdbeere.send_signal(signal.SIGHUP)
    assert cluster.wait_for(lambda: "sighup" in cluster.log_tail("erdbeere", 200), 10)

    # A clean stop: SIGTERM ends both daemons with exit code 0.
    assert [cluster.stop_node(n) for n in cluster.nodes] == [0, 0]

    # System shutdown of erdbeere: its domains stop, then its DRBD resources are demoted and brought down.
    assert main(["shutdown-node", "--sim", str(cluster.sim), "--node", "erdbeere",
                 "--state-dir", state_dir(cluster, "erdbeere")]) == 0
    assert running(cluster, "erdbeere") == set()
    assert running(cluster, "himbeere") == {"vm101"}
    from reconciler.observe.observer import Observer
    from reconciler.sim.host import SimHost

    assert Observer(SimHost(cluster.sim, "erdbeere")).observe().drbd.resources == ()
    peer_view = Observer(SimHost(cluster.sim, "himbeere")).observe().drbd.resource("vm101")
    assert peer_view is not None
    assert peer_view.role == "Primary"
    assert oracle.check(sim_state(cluster)) == []
