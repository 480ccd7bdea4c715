"""``scripts/lab setup``: host tools, then the guests' kernel, Xen and initramfs images, cached by version.

Everything comes from the package registry by name: the Debian kernel package and Xen's packages are
downloaded and unpacked into the cache (never installed on the host); QEMU, busybox and kmod are installed
on the host because the lab runs them there (busybox and kmod also inside the guests, which share the
host's root).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

from reconciler_lab import initramfs, paths
from reconciler_lab.proc import LabError, run

HOST_PACKAGES = ("qemu-system-x86", "busybox-static", "kmod", "e2fsprogs", "xfsprogs", "lvm2", "drbd-utils",
                 "iproute2", "git", "python3", "nftables")
XEN_PACKAGES = ("xen-hypervisor-4.17-amd64", "xen-utils-4.17", "xen-utils-common", "xenstore-utils",
                "libxenmisc4.17", "libxenstore4", "libxentoollog1", "libxencall1", "libxenevtchn1",
                "libxenforeignmemory1", "libxengnttab1", "libxendevicemodel1", "libxentoolcore1",
                "libxenhypfs1", "libyajl2")
# Loaded by the initramfs, in this order, to reach the host's root over 9p and lay an overlay on it.
DOM0_MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
                "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay", "virtio_blk")
# The domU: its disks (blkfront) and the replicated XFS.
DOMU_MODULES = ("xen-blkfront", "crc32c_generic", "libcrc32c", "xfs")


def _install_host_packages() -> None:
    missing = [p for p in HOST_PACKAGES
               if "install ok installed" not in run(("dpkg-query", "-W", "-f=${Status}", p), timeout=30,
                                                    check=False).stdout]
    if not missing:
        return
    if os.geteuid() != 0:
        raise LabError(f"missing host packages {', '.join(missing)}: run scripts/lab setup as root")
    run(("apt-get", "update", "-qq"), timeout=600)
    run(("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing), timeout=1200)


def _kernel_package() -> str:
    """The versioned kernel package the ``linux-image-amd64`` metapackage points at."""
    out = run(("apt-cache", "depends", "linux-image-amd64"), timeout=60).stdout
    for line in out.splitlines():
        word = line.strip().removeprefix("Depends:").strip()
        if word.startswith("linux-image-") and word.endswith("-amd64") and word != "linux-image-amd64":
            return word
    raise LabError(f"apt-cache depends linux-image-amd64 names no kernel package:\n{out}")


def _download(packages: list[str]) -> list[Path]:
    paths.DEBS.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.DEBS, 0o755)  # noqa: S103  apt-get download runs as _apt
    run(("apt-get", "download", *packages), timeout=1200, cwd=paths.DEBS)
    found = []
    for package in packages:
        debs = sorted(paths.DEBS.glob(f"{package}_*.deb"))
        if not debs:
            raise LabError(f"apt-get download {package} left no .deb in {paths.DEBS}")
        found.append(debs[-1])
    return found


def _unpack(debs: list[Path], target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for deb in debs:
        run(("dpkg-deb", "-x", str(deb), str(target)), timeout=600)


def _modules(names: tuple[str, ...], version: str) -> list[tuple[str, bytes]]:
    tree = paths.KERNEL_TREE / "lib" / "modules" / version
    found: list[tuple[str, bytes]] = []
    for name in names:
        out = run(("modprobe", "-d", str(paths.KERNEL_TREE), "-S", version, "--show-depends", name),
                  timeout=60).stdout
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == ["insmod"]:
                module = Path(parts[1])
                if module.name not in [n for n, _ in found]:
                    found.append((module.name, module.read_bytes()))
        if not out.strip():
            raise LabError(f"module {name} not found in {tree}")
    return found


def _image(init: bytes, extra: list[initramfs.Entry], modules: list[tuple[str, bytes]], out: Path) -> None:
    busybox = Path("/bin/busybox").read_bytes()
    entries = [initramfs.directory(d) for d in ("bin", "dev", "proc", "sys", "modules", "etc", "mnt", "run")]
    entries += [initramfs.regular("bin/busybox", busybox, 0o755), initramfs.symlink("bin/sh", "busybox"),
                initramfs.regular("init", init, 0o755),
                initramfs.regular("modules.list", "\n".join(n for n, _ in modules).encode() + b"\n")]
    entries += [initramfs.regular(f"modules/{name}", data) for name, data in modules]
    entries += extra
    initramfs.build(entries, out)


def build_images() -> None:
    version = paths.kernel_version()
    guest = paths.GUEST_DIR
    _image((guest / "init-stage1.sh").read_bytes(), [], _modules(DOM0_MODULES, version), paths.DOM0_INITRD)
    domu_init = (guest / "domu-init.sh").read_bytes()
    extra = [initramfs.directory("sbin"), initramfs.symlink("sbin/init", "../bin/busybox"),
             initramfs.symlink("sbin/poweroff", "../bin/busybox"),
             initramfs.regular("etc/inittab", (guest / "domu-inittab").read_bytes()),
             initramfs.regular("etc/rc", (guest / "domu-rc.sh").read_bytes(), 0o755),
             initramfs.regular("etc/writer", (guest / "domu-writer.sh").read_bytes(), 0o755)]
    _image(domu_init, extra, _modules(DOMU_MODULES, version), paths.DOMU_INITRD)


def setup(*, refresh: bool = False) -> dict[str, str]:
    """Fetch and build what is missing; return what the cache holds (also written to setup.json)."""
    _install_host_packages()
    paths.CACHE.mkdir(parents=True, exist_ok=True)
    stamp: dict[str, str] = json.loads(paths.STAMP.read_text()) if paths.STAMP.exists() and not refresh else {}
    kernel = _kernel_package()
    if stamp.get("kernel_package") != kernel or not paths.KERNEL_TREE.is_dir():
        _unpack(_download([kernel]), paths.KERNEL_TREE)
        version = paths.kernel_version()
        run(("depmod", "-b", str(paths.KERNEL_TREE), version), timeout=600)
        stamp["kernel_package"] = kernel
    if stamp.get("xen_packages") != ",".join(XEN_PACKAGES) or not paths.XEN_IMAGE.exists():
        debs = _download(list(XEN_PACKAGES))
        _unpack(debs, paths.XEN_ROOT)
        with gzip.open(paths.XEN_ROOT / "boot" / "xen-4.17-amd64.gz") as packed:
            paths.XEN_IMAGE.write_bytes(packed.read())
        stamp["xen_packages"] = ",".join(XEN_PACKAGES)
        stamp["xen_debs"] = ",".join(d.name for d in debs)
    build_images()
    # The shared root is read-only for Python's purposes on a fresh node: compile what the daemon imports.
    run((str(paths.PROJECT / ".venv" / "bin" / "python"), "-m", "compileall", "-q",
         str(paths.PROJECT / "reconciler"), str(paths.PROJECT / "reconciler_lab")), timeout=600)
    stamp["kernel_version"] = paths.kernel_version()
    paths.STAMP.write_text(json.dumps(stamp, indent=2) + "\n")
    return stamp
