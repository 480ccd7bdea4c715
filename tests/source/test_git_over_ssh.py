"""Git over ssh for real: the runbook's deploy key, ssh config and pinned host key against a real OpenSSH sshd.

sshd comes from Debian's openssh-server package, fetched with ``apt-get download`` and unpacked with
``dpkg-deb -x`` into ``$RECONCILER_SSH_TEST_CACHE`` (default /var/cache/reconciler-ssh-test), never installed:
the package's maintainer scripts would start an sshd on the machine's port 22. The scenario runs in
tests/source/sshnamespace.py under ``unshare``, in network, mount and PID namespaces of its own: sshd listens
on that namespace's loopback only, and /root/.ssh there is a tmpfs nobody outside sees. It runs once for the
module; each test below judges one claim of the runbook from what it recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

CACHE = Path(os.environ.get("RECONCILER_SSH_TEST_CACHE", "/var/cache/reconciler-ssh-test"))
PACKAGE = "openssh-server"
APT_TIMEOUT = 300.0
SCENARIO_TIMEOUT = 240.0
# The daemon's fetch without a prompt fails at once on loopback; a waiting prompt would last until the
# scenario's fetch timeout (15 s) kills it.
NO_PROMPT_SECONDS = 10.0

pytestmark = pytest.mark.timeout(int(2 * APT_TIMEOUT + SCENARIO_TIMEOUT + 60))


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], cwd=CACHE, capture_output=True, text=True, timeout=APT_TIMEOUT,
                          check=False, stdin=subprocess.DEVNULL)


def _cached_deb() -> Path | None:
    debs = sorted(CACHE.glob(f"{PACKAGE}_*.deb"))
    return debs[-1] if debs else None


def fetch_package() -> Path:
    """The cached .deb, downloaded first if there is none; skips (saying why) when the registry cannot be reached."""
    if not CACHE.is_dir():
        CACHE.mkdir(mode=0o755, parents=True)
        os.chmod(CACHE, 0o755)  # noqa: S103  apt-get download runs as _apt (and the umask may be tighter)
    deb = _cached_deb()
    if deb is not None:
        return deb
    first = _apt("download", PACKAGE)
    if first.returncode != 0:
        # A fresh machine may have no package lists, or stale ones naming a version the mirror dropped.
        update = _apt("update", "-qq")
        again = _apt("download", PACKAGE)
        if again.returncode != 0:
            pytest.skip(f"cannot fetch {PACKAGE} from the package registry: `apt-get download {PACKAGE}` failed "
                        f"({first.stderr.strip()[-300:]}); after `apt-get update` ({update.stderr.strip()[-300:]}) "
                        f"it failed again ({again.stderr.strip()[-300:]})")
    deb = _cached_deb()
    assert deb is not None, f"apt-get download {PACKAGE} succeeded but left no {PACKAGE}_*.deb in {CACHE}"
    return deb


def unpacked_sshd(deb: Path) -> Path:
    """The package's sshd, unpacked beside the .deb once; fails when a library it needs is not installed."""
    tree = CACHE / deb.stem
    sshd = tree / "usr" / "sbin" / "sshd"
    if not sshd.exists():
        partial = CACHE / f"{deb.stem}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], capture_output=True, text=True, timeout=120,
                       check=True, stdin=subprocess.DEVNULL)
        shutil.rmtree(tree, ignore_errors=True)
        partial.rename(tree)
    ldd = subprocess.run(["ldd", str(sshd)], capture_output=True, text=True, timeout=30, check=False,
                         stdin=subprocess.DEVNULL)
    missing = [line.split()[0] for line in ldd.stdout.splitlines() if "not found" in line]
    assert not missing, (f"{sshd} needs {', '.join(missing)}, not installed here: scripts/setup installs the "
                         "packages that provide them (libwrap0 for libwrap.so.0)")
    return sshd


def _root_ssh() -> list[tuple[str, int, int]] | None:
    """What the machine's own /root/.ssh holds (name, size, mtime), or None when there is none."""
    home = Path("/root/.ssh")
    if not home.is_dir():
        return None
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in home.iterdir())


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network, mount and PID namespaces, and an sshd that switches to its git user")
    sshd = unpacked_sshd(fetch_package())
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is not installed: run scripts/setup"
    out = tmp_path_factory.mktemp("git-over-ssh") / "seen.json"
    outside = {kind: os.stat(f"/proc/self/ns/{kind}").st_ino for kind in ("net", "mnt")}
    before = _root_ssh()
    proc = subprocess.run(
        [unshare, "--net", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--kill-child",
         sys.executable, "-m", "tests.source.sshnamespace", str(sshd), str(out), json.dumps(outside)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT, check=False,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"the scenario failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    data: dict[str, Any] = json.loads(out.read_text())
    data["root_ssh"] = {"before": before, "after": _root_ssh()}
    return data


def step(seen: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = seen["steps"][name]
    assert "crash" not in result, f"step {name} crashed:\n{result['crash']}\nsshd: {seen['sshd_log'][-15:]}"
    return result


def fetch_errors(result: dict[str, Any]) -> list[str]:
    status = result["status"]
    assert isinstance(status, dict), f"`reconciler status --json` failed: {status}"
    return [e for e in status["recent_errors"] if "fetch from ssh://" in e]


def test_the_runbooks_deploy_key_fetches_the_servers_head(seen: dict[str, Any]) -> None:
    assert seen["known_hosts"].startswith("127.0.0.1 ssh-ed25519 "), seen["known_hosts"]
    first = step(seen, "first")
    assert "error" not in first, first["error"]
    assert first["tip"] == seen["heads"]["first"]
    assert first["in_force"] == seen["heads"]["first"]


def test_a_new_commit_on_the_server_is_fetched_next_time(seen: dict[str, Any]) -> None:
    second = step(seen, "second")
    assert "error" not in second, second["error"]
    assert (second["tip"], second["in_force"]) == (seen["heads"]["second"], seen["heads"]["second"])


def test_a_changed_host_key_is_a_source_error_and_the_last_good_revision_stays(seen: dict[str, Any]) -> None:
    changed = step(seen, "changed_host_key")
    assert changed.get("error_type") == "GitFailed", changed  # a SourceError: what the loop catches
    assert not changed.get("not_source_error")
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in changed["error"]
    assert "Host key verification failed" in changed["stderr"]
    # The third commit waits on the server; the second stays in force.
    assert changed["in_force"] == seen["heads"]["second"] != seen["heads"]["third"]


def test_status_and_log_report_the_failed_fetch_with_the_applied_revision(seen: dict[str, Any]) -> None:
    changed = step(seen, "changed_host_key")
    # The warning itself, not the frame of '@' ssh draws around it, leads what status says.
    assert any("failed (retry in" in e and "s): WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!; " in e
               for e in fetch_errors(changed)), changed["status"]
    assert changed["status"]["last_applied"]["sha"] == seen["heads"]["second"]
    assert changed["status_exit"] == 0, changed["status_text"]
    assert f"applied revision:   {seen['heads']['second'][:12]}" in changed["status_text"]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in changed["status_text"]
    logged = [e for e in changed["events"] if e["event"] == "fetch.error"]
    assert logged, changed["events"]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in logged[0]["error"]


def _refused_at_once(seen: dict[str, Any], name: str, words: str) -> None:
    """Step ``name`` failed with ssh's ``words``, at once and without a prompt, as the source's error, in status,
    with the last good revision still in force."""
    outcome = step(seen, name)
    assert outcome["tty"] == "", f"the fetch asked on the terminal: {outcome['tty']!r}"
    assert outcome.get("error_type") == "GitFailed", outcome
    assert words in outcome["error"]
    assert outcome["seconds"] < NO_PROMPT_SECONDS
    assert outcome["in_force"] == seen["heads"]["second"]
    assert any(words in e for e in fetch_errors(outcome)), outcome["status"]


def test_an_unknown_host_key_fails_without_asking(seen: dict[str, Any]) -> None:
    _refused_at_once(seen, "unknown_host_key", "Host key verification failed")


def test_a_removed_deploy_key_is_denied_without_a_prompt(seen: dict[str, Any]) -> None:
    _refused_at_once(seen, "deploy_key_removed", "Permission denied (publickey")


def test_the_terminal_would_have_shown_a_prompt(seen: dict[str, Any]) -> None:
    # The same server, terminal and refused key, with ssh as an operator would run it: it asks for a
    # password there. So the empty terminal above means the daemon's ssh did not ask.
    control = step(seen, "prompting_client")
    assert control["prompted"], control["tty"]


def test_a_deploy_key_missing_on_the_node_is_denied_without_a_prompt(seen: dict[str, Any]) -> None:
    missing = step(seen, "deploy_key_missing_here")
    assert missing["tty"] == "", f"the fetch asked on the terminal: {missing['tty']!r}"
    assert missing.get("error_type") == "GitFailed", missing
    assert "Permission denied (publickey" in missing["error"]
    assert "reconciler_deploy" in missing["stderr"]  # ssh names the identity file it could not load
    assert missing["seconds"] < NO_PROMPT_SECONDS
    assert missing["in_force"] == seen["heads"]["second"]


def test_the_waiting_commit_comes_into_force_once_the_key_is_back(seen: dict[str, Any]) -> None:
    restored = step(seen, "deploy_key_restored")
    assert "error" not in restored, restored["error"]
    assert restored["in_force"] == seen["heads"]["third"]


def test_the_machines_own_root_ssh_is_untouched(seen: dict[str, Any]) -> None:
    assert seen["root_ssh"]["before"] == seen["root_ssh"]["after"]
