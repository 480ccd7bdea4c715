"""The real provisioning helper on a real XFS filesystem in a loop device, in a real private mount namespace.

Needs root, util-linux's ``unshare`` and ``losetup``, xfsprogs and a free loop device; skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest

from reconciler.core.provisioning import RECONCILER, run_argv, unused_argv

HAVE_TOOLS = all(shutil.which(t) for t in ("unshare", "losetup", "mkfs.xfs", "mount", "umount"))
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not HAVE_TOOLS or not os.path.exists("/dev/loop-control"),
                                reason="needs root, unshare, losetup, mkfs.xfs and loop devices")

PROGRAM = (sys.executable, "-m", "reconciler")


def real(argv: tuple[str, ...]) -> list[str]:
    """The planned argv with this checkout's interpreter in place of the installed ``reconciler``."""
    i = argv.index(RECONCILER)
    return [*argv[:i], *PROGRAM, *argv[i + 1:]]


def sh(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=Path(__file__).resolve().parents[2])


@pytest.fixture
def device(tmp_path: Path) -> Iterator[str]:
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(320 * 1024 * 1024)
    assert sh("mkfs.xfs", "-q", "-L", "rprov-new", str(image)).returncode == 0
    attached = sh("losetup", "--find", "--show", str(image))
    if attached.returncode != 0:
        pytest.skip(f"no loop device: {attached.stderr.strip()}")
    loop = attached.stdout.strip()
    try:
        yield loop
    finally:
        sh("losetup", "-d", loop)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    script = tmp_path / "fill"
    script.write_text("#!/bin/sh\nset -e\necho \"filling $1 for $RECONCILER_VM\"\nmkdir \"$1/etc\"\n"
                      "echo guest > \"$1/etc/hostname\"\ngrep \" $1 \" /proc/self/mounts | sed 's/^/mount: /'\n")
    script.chmod(0o755)
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\n( exec sleep 987.654 ) &\nexec sleep 600\n")
    hang.chmod(0o755)
    path = tmp_path / "provisioning.toml"
    path.write_text(f'image_roots = ["{images}"]\n[provisioners.fill]\ncommand = ["{script}", "{{target}}"]\n'
                    f'[provisioners.hang]\ncommand = ["{hang}"]\n')
    path.chmod(0o644)
    return path


def provision(device: str, config: Path, *, image: str | None = None, provisioner: str | None = None,
              timeout: int = 60) -> subprocess.CompletedProcess[str]:
    argv = real(run_argv("vm1", device, provisioner, image, timeout))
    return sh(*argv, "--config", str(config), timeout=timeout + 60)


def listing(device: str, tmp_path: Path) -> dict[str, tuple[int, int, int, str]]:
    """What the filesystem holds: path -> (mode, uid, gid, link target), read through a read-only mount."""
    mnt = tmp_path / "look"
    mnt.mkdir(exist_ok=True)
    code = ("import os, sys, subprocess; d, m = sys.argv[1:]; subprocess.run(['mount', '-o', 'ro', d, m], check=True)\n"
            "for here, dirs, files in os.walk(m):\n"
            "    for n in dirs + files:\n"
            "        p = os.path.join(here, n); s = os.lstat(p)\n"
            "        print(os.path.relpath(p, m), s.st_mode, s.st_uid, s.st_gid, os.readlink(p) if os.path.islink(p) "
            "else '')\n"
            "subprocess.run(['umount', m], check=True)\n")
    out = sh("unshare", "--mount", "--propagation", "private", sys.executable, "-c", code, device, str(mnt))
    assert out.returncode == 0, out.stderr
    rows = (line.split(" ") for line in out.stdout.splitlines())
    return {r[0]: (int(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows}


def add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: object) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, BytesIO(data) if kind == tarfile.REGTYPE else None)


def root_archive(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        add(tar, "bin", tarfile.DIRTYPE, mode=0o755)
        add(tar, "bin/busybox", data=b"\x7fELF", mode=0o4755, uid=0, gid=0)
        add(tar, "bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox")
        add(tar, "home", tarfile.DIRTYPE, mode=0o755)
        add(tar, "home/guest", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000, uname="nobody-here", gname="x")
        add(tar, "dev", tarfile.DIRTYPE, mode=0o755)
        add(tar, "dev/console", tarfile.CHRTYPE, devmajor=5, devminor=1, mode=0o600)


def test_a_root_archive_lands_as_a_root_filesystem_in_a_mount_nobody_else_sees(device: str, config: Path,
                                                                              tmp_path: Path) -> None:
    archive = tmp_path / "images" / "busybox.tar.gz"
    root_archive(archive)
    done = provision(device, config, image=str(archive))
    assert done.returncode == 0, done.stderr
    assert "skipped 1 device nodes or FIFOs (device_nodes = false): dev/console" in done.stdout
    assert device not in Path("/proc/self/mounts").read_text()
    assert list(Path("/run/reconciler-provision").iterdir()) == []  # the mount point is gone too
    found = listing(device, tmp_path)
    assert found["bin/busybox"][0] & 0o7777 == 0o4755  # setuid kept: a root filesystem needs it
    assert found["bin/sh"][3] == "/bin/busybox"  # an absolute link means the guest's path
    assert found["home/guest"][1:3] == (1000, 1000)  # numeric owners, not dom0's names
    assert "dev/console" not in found
    again = provision(device, config, image=str(archive))
    assert again.returncode == 1
    assert "is not empty (bin, dev, home)" in again.stderr


@pytest.mark.parametrize(("members", "words"), [
    ([("etc", tarfile.SYMTYPE, {"linkname": "CANARY"}), ("etc/evil", tarfile.REGTYPE, {})], "outside the filesystem"),
    ([("../evil", tarfile.REGTYPE, {})], "climbs out"),
    ([("/evil", tarfile.REGTYPE, {})], "is absolute"),
    ([("x", tarfile.SYMTYPE, {"linkname": "CANARY/evil"}), ("x", tarfile.REGTYPE, {})], "outside the filesystem"),
    ([("l", tarfile.SYMTYPE, {"linkname": "CANARY"}), ("h", tarfile.LNKTYPE, {"linkname": "l/victim"})],
     "hard link"),
])
def test_an_archive_never_writes_outside_the_filesystem(device: str, config: Path, tmp_path: Path,
                                                        members: list[tuple[str, bytes, dict[str, str]]],
                                                        words: str) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "victim").write_text("dom0's file\n")
    archive = tmp_path / "images" / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        for name, kind, fields in members:
            fixed = {k: v.replace("CANARY", str(canary)) for k, v in fields.items()}
            add(tar, name, kind, data=b"pwned\n" if kind == tarfile.REGTYPE else b"", **fixed)
    done = provision(device, config, image=str(archive))
    assert done.returncode == 1
    assert words in done.stderr
    assert sorted(p.name for p in canary.iterdir()) == ["victim"]
    assert (canary / "victim").read_text() == "dom0's file\n"
    assert not (tmp_path / "evil").exists()
    assert not Path("/evil").exists()


def test_a_provisioner_fills_it_and_a_hanging_one_is_killed_with_all_it_started(device: str, config: Path,
                                                                               tmp_path: Path) -> None:
    done = provision(device, config, provisioner="fill")
    assert done.returncode == 0, done.stderr
    assert "filling /run/reconciler-provision/mnt-" in done.stdout
    assert "for vm1" in done.stdout
    # A guest may have crafted the filesystem (emptied, labelled rprov-new): no device nodes, no setuid from it;
    # a provisioner may still run binaries inside the target (a debootstrap's chroot).
    options = next(line for line in done.stdout.splitlines() if line.startswith("mount: ")).split()[4].split(",")
    assert "nodev" in options
    assert "nosuid" in options
    assert "noexec" not in options
    assert "etc/hostname" in listing(device, tmp_path)
    assert sh("wipefs", "-a", device).returncode == 0
    assert sh("mkfs.xfs", "-q", "-L", "rprov-new", device).returncode == 0
    hung = provision(device, config, provisioner="hang", timeout=3)
    assert hung.returncode == 1
    assert "timed out" in hung.stderr
    # The background process the provisioner left was in the helper's PID namespace: it ended with it.
    assert left_behind("987.654") == []
    assert device not in Path("/proc/self/mounts").read_text()


def left_behind(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_text().replace("\0", " ") \
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(entry.name)
        except OSError:
            continue
    return found


def test_the_helper_refuses_to_mount_in_a_shared_namespace(device: str, config: Path) -> None:
    argv = real(run_argv("vm1", device, "fill", None, 60))
    plain = argv[argv.index("--") + 1:]
    done = sh(*plain, "--config", str(config))
    assert done.returncode == 1
    assert "refusing to mount" in done.stderr


def test_unused_sees_a_mount_in_another_namespace_that_proc_mounts_does_not_show(device: str, tmp_path: Path) -> None:
    assert sh(*real(unused_argv((device,)))).returncode == 0
    mnt = tmp_path / "held"
    mnt.mkdir()
    holder = subprocess.Popen(  # mounts privately, says so, and holds the mount until its stdin closes
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
         "import subprocess, sys; d, m = sys.argv[1:]; subprocess.run(['mount', d, m], check=True); "
         "print('mounted', flush=True); sys.stdin.read(); subprocess.run(['umount', m], check=True)",
         device, str(mnt)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "mounted"
        assert device not in Path("/proc/self/mounts").read_text()
        busy = sh(*real(unused_argv((device,))))
        assert busy.returncode == 1
        assert "Device or resource busy (mounted in some mount namespace" in busy.stdout
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert sh(*real(unused_argv((device,)))).returncode == 0
