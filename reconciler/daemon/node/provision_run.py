"""``reconciler helper``: the node-side steps of a provisioning, run by the executor as commands.

``provision-run`` runs as the init of a mount and PID namespace of its own (``unshare --mount --propagation
private --pid --fork --kill-child``): the filesystem's mount is invisible to every other process, and
when the helper ends, by itself or killed, the kernel ends every process left in its PID namespace and
with the last of them the namespace and its mount. It mounts the device on a fresh directory, checks the
filesystem is empty, fills it from the node's provisioner or image, unmounts it and removes the directory.

Images are copied by this module, never by a tool that trusts the archive:

- A member's path is relative and has no ``..``; after following what the archive itself created (a
  symlink ``etc -> /etc`` and then ``etc/passwd``), the path must still be inside the target: the mount
  namespace is private, but dom0's files are all visible in it.
- Otherwise the archive is trusted as a root filesystem is: owners, modes with setuid bits and symlinks to
  absolute paths (they mean the guest's paths) are kept, as ``tarfile``'s ``fully_trusted`` filter keeps
  them. Its ``data`` and ``tar`` filters are not used: they drop setuid bits and owners, or refuse absolute
  symlinks, which breaks a root filesystem (``su``, ``/etc/localtime``).
- Device nodes and FIFOs are skipped and listed unless the node's config sets ``device_nodes = true``: a
  guest's ``/dev`` is a devtmpfs, and a node from an archive is the one thing an archive could use to reach
  dom0's hardware from the guest.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import signal
import stat
import sys
import tarfile
import tempfile
import time
from typing import TextIO

from reconciler.daemon.node.provision_config import ProvisionConfig, ProvisionConfigError
from reconciler.host.real import RealHost
from reconciler.names import check_device_path

MOUNT_TIMEOUT = 120.0
RUN_DIR = "/run/reconciler-provision"
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ProvisionError(RuntimeError):
    """The provisioning failed; the message says at which step and what was said."""


def read_trusted_config(path: str) -> str | None:
    """The config's text, or None when it is missing. It says what runs as root here: it must be root's and
    writable by no one else (as /etc/reconciler/peer.key must)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProvisionConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != 0 or info.st_mode & 0o022:
            raise ProvisionConfigError(f"{path} must belong to root and be writable by root only (it names what runs "
                                       f"as root here): chown root: {path}; chmod 0644 {path}")
        return handle.read()


def unused(devices: tuple[str, ...], out: TextIO = sys.stdout) -> int:
    """0 when every device opens exclusively; 1, naming the busy ones, otherwise."""
    busy = []
    for device in devices:
        check_device_path(device)
        try:
            fd = os.open(device, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
        except OSError as exc:
            busy.append(f"{device}: {exc.strerror}" + (" (mounted in some mount namespace, or held by a device or "
                                                       "process)" if exc.errno == errno.EBUSY else ""))
            continue
        os.close(fd)
    if busy:
        out.write("not unused: " + "; ".join(busy) + "\n")
        return 1
    out.write(f"unused: {' '.join(devices)}\n")
    return 0


def resolve_image(config: ProvisionConfig, image: str) -> str:
    """The image's real path, inside one of the node's image roots after every symlink is followed."""
    root = config.image_root(image)
    real = os.path.realpath(image)
    real_root = os.path.realpath(root)
    if not real.startswith(real_root.rstrip("/") + "/"):
        raise ProvisionConfigError(f"{config.path}: image {image} leads to {real}, outside its image root {root}")
    if not os.path.exists(real):
        raise ProvisionConfigError(f"image {image} does not exist on this node")
    if not (os.path.isdir(real) or os.path.isfile(real)):
        raise ProvisionConfigError(f"image {image} is neither a directory nor a regular file (a tar archive)")
    return real


def check_source(config: ProvisionConfig, provisioner: str | None, image: str | None) -> str:
    """What would fill the filesystem, checked on this node without writing anything."""
    if provisioner is not None:
        found = config.provisioner(provisioner)
        program = found.command[0]
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise ProvisionConfigError(f"{config.path}: provisioner {provisioner}'s program {program} is not an "
                                       "executable file on this node")
        return f"provisioner {provisioner}: {' '.join(found.argv('TARGET'))}"
    real = resolve_image(config, image or "")
    if os.path.isfile(real) and not tarfile.is_tarfile(real):
        raise ProvisionConfigError(f"image {image} is not a tar archive tarfile can read")
    return f"image {image}" + (f" ({real})" if real != image else "")


def _in_private_namespace() -> bool:
    """The init of a PID namespace of its own (so nothing it starts outlives it), in a mount namespace whose
    mounts all have private propagation (so its mount reaches no other namespace): what ``run_argv`` makes."""
    if os.getpid() != 1:
        return False
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return False
    # Optional fields sit between the mount options and " - "; "shared:N" means mounts propagate.
    return bool(lines) and not any("shared:" in line.split(" - ", 1)[0] for line in lines)


def provision(config: ProvisionConfig, device: str, *, provisioner: str | None, image: str | None, vm: str,
              timeout_s: float, out: TextIO = sys.stdout) -> None:
    """Mount, check empty, fill, unmount; raises :class:`ProvisionError` (after unmounting) on any failure."""
    check_device_path(device)
    deadline = time.monotonic() + timeout_s
    if not _in_private_namespace():
        raise ProvisionError("refusing to mount: not the init of its own PID namespace in a private mount namespace "
                             "(run it through unshare --mount --propagation private --pid --fork)")
    source = check_source(config, provisioner, image)
    if unused((device,), out) != 0:
        raise ProvisionError(f"{device} is in use; nothing was mounted")
    host = RealHost(env={"PATH": SAFE_PATH})
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    target = tempfile.mkdtemp(prefix="mnt-", dir=RUN_DIR)
    mounted = False
    try:
        # The filesystem may have been crafted by a guest that emptied it and set the label rprov-new: never
        # honour its device nodes or setuid bits in dom0. A provisioner may run binaries inside the target
        # (debootstrap's chroot), so only an image's extraction also forbids executing from it.
        options = "nodev,nosuid,noexec" if image is not None else "nodev,nosuid"
        result = host.run(("mount", "-t", "xfs", "-o", options, device, target), timeout=MOUNT_TIMEOUT)
        if not result.ok:
            raise ProvisionError(f"mounting {device} failed: {result.describe()}")
        mounted = True
        found = sorted(os.listdir(target))
        if found:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise ProvisionError(f"the filesystem on {device} is not empty ({shown}): provisioning fills only an "
                                 "empty filesystem (an earlier attempt left these; see docs/desired-state.md)")
        out.write(f"provisioning {device} of {vm} from {source}\n")
        out.flush()
        if provisioner is not None:
            _run_provisioner(config, provisioner, target, vm=vm, deadline=deadline, out=out)
        else:
            _copy_image(config, resolve_image(config, image or ""), target, deadline, out)
        os.sync()
    finally:
        if mounted:
            _kill_leftovers()
            result = host.run(("umount", target), timeout=MOUNT_TIMEOUT)
            if not result.ok:
                # The namespace's end unmounts it all the same; the domain's exclusive open proves it.
                out.write(f"warning: {result.describe()}; the mount ends with this namespace\n")
        with contextlib.suppress(OSError):
            os.rmdir(target)


def _kill_leftovers() -> None:
    """As the PID namespace's init: end whatever the provisioner left running (it holds the mount busy)."""
    if os.getpid() != 1:
        return
    with contextlib.suppress(OSError):
        os.kill(-1, signal.SIGKILL)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProvisionError("timed out")
    return left


def _run_provisioner(config: ProvisionConfig, name: str, target: str, *, vm: str, deadline: float,
                     out: TextIO) -> None:
    argv = config.provisioner(name).argv(target)
    result = RealHost(env={"PATH": SAFE_PATH, "RECONCILER_VM": vm, "RECONCILER_TARGET": target}).run(
        argv, timeout=_remaining(deadline))
    said = (result.stdout + result.stderr).strip().splitlines()
    out.write("".join(line + "\n" for line in said[-40:]))
    if not result.ok:
        raise ProvisionError(f"provisioner {name} failed: {result.describe()}")


def _inside(target: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == target or real.startswith(target.rstrip("/") + "/")


def _member_path(target: str, name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise ProvisionError(f"archive member {name!r} is absolute or climbs out with '..': refused")
    return posixpath.join(target, *parts) if parts else target


def _copy_image(config: ProvisionConfig, real: str, target: str, deadline: float, out: TextIO) -> None:
    if os.path.isdir(real):
        skipped = _copy_tree(config, real, target, deadline)
    else:
        skipped = _extract(config, real, target, deadline)
    if skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        out.write(f"skipped {len(skipped)} device nodes or FIFOs (device_nodes = false): {shown}\n")


def _extract(config: ProvisionConfig, archive: str, target: str, deadline: float) -> list[str]:
    skipped: list[str] = []
    real_target = os.path.realpath(target)

    def member_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        _remaining(deadline)
        path = _member_path(real_target, member.name)
        parent = posixpath.dirname(path) if path != real_target else real_target
        if not _inside(real_target, parent) or (os.path.lexists(path) and not _inside(real_target, path)):
            raise ProvisionError(f"archive member {member.name!r} would be written outside the filesystem "
                                 "(through a symlink in the archive): refused")
        if member.islnk() and not _inside(real_target, _member_path(real_target, member.linkname)):
            raise ProvisionError(f"archive member {member.name!r} is a hard link to {member.linkname!r} outside the "
                                 "filesystem: refused")
        if (member.ischr() or member.isblk() or member.isfifo()) and not config.device_nodes:
            skipped.append(member.name)
            return None
        return tarfile.fully_trusted_filter(member, dest)

    try:
        with tarfile.open(archive, "r:*") as tar:
            # One member at a time, so each is checked against what the members before it created.
            for member in tar:
                tar.extract(member, real_target, numeric_owner=True, filter=member_filter)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ProvisionError(f"extracting {archive} failed: {exc}") from exc
    return skipped


def _copy_tree(config: ProvisionConfig, source: str, target: str, deadline: float) -> list[str]:
    """Copies a directory tree as it is (owners, modes, symlinks as symlinks), never following a link."""
    skipped: list[str] = []
    try:
        for here, dirs, files in os.walk(source, followlinks=False):
            _remaining(deadline)
            rel = os.path.relpath(here, source)
            dest_dir = target if rel == "." else os.path.join(target, rel)
            for name in [*dirs, *files]:
                src = os.path.join(here, name)
                dst = os.path.join(dest_dir, name)
                info = os.lstat(src)
                if stat.S_ISDIR(info.st_mode):
                    os.mkdir(dst)
                elif stat.S_ISLNK(info.st_mode):
                    os.symlink(os.readlink(src), dst)
                elif stat.S_ISREG(info.st_mode):
                    shutil.copyfile(src, dst, follow_symlinks=False)
                elif config.device_nodes:
                    os.mknod(dst, info.st_mode, info.st_rdev)
                else:
                    skipped.append(os.path.relpath(src, source))
                    continue
                _keep_metadata(info, dst)
        _keep_metadata(os.lstat(source), target)
    except OSError as exc:
        raise ProvisionError(f"copying {source} failed: {exc}") from exc
    return skipped


def _keep_metadata(info: os.stat_result, dst: str) -> None:
    os.chown(dst, info.st_uid, info.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(dst, stat.S_IMODE(info.st_mode))  # after chown, which clears setuid bits
    os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)

