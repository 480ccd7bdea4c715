"""The simulator's provisioning tools against what the real ones printed (tests/sim/fixtures/xfs_admin-*)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sim.host import SimHost
from tests.sim.storage_helpers import cluster, ok

FIXTURES = Path(__file__).parent / "fixtures"
DEVICE = "/dev/vg-sda/scratch"


def captured(name: str) -> tuple[str, str, int]:
    read = {part: (FIXTURES / f"xfs_admin-{name}.{part}").read_text() for part in ("stdout", "stderr", "exit")}
    return (read["stdout"].replace("DEVICE", DEVICE), read["stderr"].replace("DEVICE", DEVICE),
            int(read["exit"].strip()))


@pytest.fixture
def host(tmp_path: Path) -> SimHost:
    host = SimHost(cluster(tmp_path, nodes=("erdbeere",)), "erdbeere")
    ok(host, "lvcreate", "-L", "300M", "-n", "scratch", "vg-sda")
    return host


def run(host: SimHost, *argv: str) -> tuple[str, str, int]:
    result = host.run(list(argv), timeout=30)
    return result.stdout, result.stderr, result.returncode


def test_xfs_admin_prints_what_xfsprogs_printed(host: SimHost) -> None:
    assert run(host, "xfs_admin", "-L", "x", DEVICE) == captured("notxfs")
    ok(host, "mkfs.xfs", "-q", "-L", "rprov-new", DEVICE)
    assert run(host, "xfs_admin", "-L", "rprov-try1", DEVICE) == captured("label")
    ok(host, "mount", DEVICE, "/mnt")
    assert run(host, "xfs_admin", "-L", "rprov-try1", DEVICE) == captured("mounted")
    ok(host, "umount", "/mnt")
    ok(host, "xfs_admin", "-L", "rprov-done", DEVICE)
    probe = host.run(["blkid", "-p", "-o", "export", DEVICE], timeout=30)
    want = (FIXTURES / "blkid-provisioned.stdout").read_text().replace("DEVICE", DEVICE)
    uuid = next(line for line in probe.stdout.splitlines() if line.startswith("UUID="))
    want_uuid = next(line for line in want.splitlines() if line.startswith("UUID="))
    assert probe.stdout == want.replace(want_uuid, uuid)


def test_the_helper_mounts_only_inside_unshare_and_never_in_dom0s_table(host: SimHost) -> None:
    host.write_file("/etc/reconciler/provisioning.toml", 'image_roots = ["/srv/images"]\n', 0o644)
    host.write_file("/srv/images/root.tar", "archive\n", 0o644)
    ok(host, "mkfs.xfs", "-q", "-L", "rprov-new", DEVICE)
    helper = ("reconciler", "helper", "provision-run", "--vm", "vm1", "--device", DEVICE, "--timeout", "60",
              "--image", "/srv/images/root.tar")
    plain = host.run(list(helper), timeout=30)
    assert plain.returncode == 1
    assert "refusing to mount" in plain.stderr
    shared = host.run(["unshare", "--mount", "--propagation", "shared", "--pid", "--fork", "--", *helper], timeout=30)
    assert shared.returncode == 1
    assert "refusing to mount" in shared.stderr
    done = host.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--",
                     *helper], timeout=30)
    assert done.ok, done.describe()
    assert "provisioned /dev/vg-sda/scratch of vm1" in done.stdout
    assert DEVICE not in (host.read_file("/proc/self/mounts") or "")
    again = host.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--", *helper], timeout=30)
    assert again.returncode == 1
    assert "is not empty" in again.stderr


def test_unused_is_busy_while_anything_holds_the_device(host: SimHost) -> None:
    assert host.run(["reconciler", "helper", "unused", DEVICE], timeout=30).ok
    ok(host, "mkfs.xfs", "-q", DEVICE)
    ok(host, "mount", DEVICE, "/mnt")
    busy = host.run(["reconciler", "helper", "unused", DEVICE], timeout=30)
    assert busy.returncode == 1
    assert "Device or resource busy" in busy.stdout
