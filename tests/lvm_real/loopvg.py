"""Real lvm2 volume groups on loop devices, isolated from the machine's own LVM and from other tests.

    with loop_vgs(["vg-sda", "vg-sdb"]) as lab:
        lab.lvcreate("vg-sda", "root100", 64 * MIB)
        observed = Observer(lab.host()).observe()

Each lab gets sparse backing files and loop devices of its own, and an ``lvm.conf`` (in a temporary
``LVM_SYSTEM_DIR``) that accepts only those loop devices, disables activation (no device-mapper needed),
udev synchronisation, metadata backups and hints, and keeps its locks in the lab's directory. Two labs
running at once therefore never see each other's volume groups; VG names still get a random suffix by
default so that tools run with the machine's own configuration cannot confuse them either.

Cleanup (volume groups, then only the loop devices this lab attached, then the files) runs on leaving
the ``with`` block, also when the body failed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import string
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.host.real import RealHost

MIB = 1024**2
GIB = 1024**3
COMMAND_TIMEOUT = 120.0
_ID_ALPHABET = string.ascii_letters + string.digits


def unavailable_reason() -> str | None:
    """Why real lvm2 on loop devices cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to attach loop devices and write LVM metadata"
    for program in ("losetup", "lvm", "pvcreate", "vgcreate", "lvcreate", "vgremove", "vgcfgrestore"):
        if shutil.which(program) is None:
            return f"{program} is not installed"
    if not Path("/dev/loop-control").exists():
        return "the kernel offers no loop devices (/dev/loop-control is absent)"
    return None


def _run(argv: Sequence[str], env: dict[str, str] | None = None, check: bool = True,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "LC_ALL": "C", "LVM_SUPPRESS_FD_WARNINGS": "1", **(env or {})}
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=full_env, timeout=COMMAND_TIMEOUT,
                          check=False, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _attach(image: Path) -> str:
    # Two labs may race for the same free loop device; losetup then fails and a retry finds the next one.
    last = ""
    for attempt in range(10):
        proc = _run(["losetup", "--find", "--show", str(image)], check=False)
        if proc.returncode == 0 and proc.stdout.strip().startswith("/dev/loop"):
            return proc.stdout.strip()
        last = proc.stderr.strip()
        time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"cannot attach {image} to a loop device: {last}")


def _backing_file(loop: str) -> str | None:
    proc = _run(["losetup", "--list", "--noheadings", "--output", "BACK-FILE", loop], check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _lvm_conf(loops: Sequence[str], lock_dir: Path) -> str:
    accept = ", ".join(f'"a|^{loop}$|"' for loop in loops)
    patterns = f'[ {accept}, "r|.*|" ]'
    return f"""# lvm.conf of a test lab: only this lab's loop devices, no device-mapper activation
devices {{
    filter = {patterns}
    global_filter = {patterns}
    use_devicesfile = 0
    obtain_device_list_from_udev = 0
    hints = "none"
}}
global {{
    activation = 0
    locking_dir = "{lock_dir}"
    use_lvmlockd = 0
}}
activation {{
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}}
backup {{
    backup = 0
    archive = 0
}}
"""


def _lvm_id() -> str:
    raw = "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))
    cuts = (6, 4, 4, 4, 4, 4, 6)
    parts, pos = [], 0
    for cut in cuts:
        parts.append(raw[pos:pos + cut])
        pos += cut
    return "-".join(parts)


@dataclass
class LoopLab:
    """A set of volume groups on loop devices; ``vg_names`` maps the name asked for to the real name."""

    workdir: Path
    env: dict[str, str]
    vg_names: dict[str, str] = field(default_factory=dict)
    loops: dict[str, str] = field(default_factory=dict)
    images: list[Path] = field(default_factory=list)

    def vg(self, name: str) -> str:
        return self.vg_names[name]

    def host(self, node: str = "testnode") -> RealHost:
        """The real host seam, seeing only this lab's LVM."""
        return RealHost(node, env=self.env)

    def lvm(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(argv, self.env, check=check)

    def detach(self, name: str) -> None:
        """Make the disk under ``name`` vanish (as a failed disk does); cleanup copes with it."""
        loop = self.loops[name]
        if _backing_file(loop) == str(self.workdir / f"{name}.img"):
            _run(["losetup", "--detach", loop])

    def lvcreate(self, vg: str, name: str, size_bytes: int, *extra: str) -> None:
        self.lvm("lvcreate", "--yes", "-n", name, "-L", f"{size_bytes}b", *extra, self.vg(vg))

    def bulk_create_lvs(self, vg: str, names: Sequence[str], size_bytes: int) -> None:
        """Create many equally sized linear LVs with one metadata write (``vgcfgrestore``).

        lvm2 itself writes and reads the result, so ``vgs``/``lvs`` see ordinary LVs; this only saves the
        minutes that one ``lvcreate`` per LV would take. The volume group must have no LVs yet.
        """
        if not names:
            return
        real_vg = self.vg(vg)
        self.lvcreate(vg, names[0], size_bytes)
        backup = self.workdir / f"{real_vg}.vgcfg"
        self.lvm("vgcfgbackup", "-f", str(backup), real_vg)
        text = backup.read_text()
        extent_bytes = 4 * MIB
        for line in text.splitlines():
            if line.strip().startswith("extent_size ="):
                extent_bytes = int(line.split("=")[1].split()[0]) * 512
        extents = -(-size_bytes // extent_bytes)
        sections = []
        for index, name in enumerate(names[1:], start=1):
            sections.append(
                f"\t\t{name} {{\n\t\t\tid = \"{_lvm_id()}\"\n"
                "\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n"
                "\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n"
                f"\t\t\t\textent_count = {extents}\n\n\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\n"
                f"\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", {index * extents}\n\t\t\t\t]\n\t\t\t}}\n\t\t}}\n"
            )
        marker = "\tlogical_volumes {\n"
        if marker not in text:
            raise RuntimeError(f"unexpected vgcfgbackup layout in {backup}")
        backup.write_text(text.replace(marker, marker + "\n" + "\n".join(sections), 1))
        self.lvm("vgcfgrestore", "-f", str(backup), real_vg)


@contextlib.contextmanager
def loop_vgs(names: Sequence[str] = ("vg-sda",), *, disk_bytes: int = GIB, metadata_bytes: int | None = None,
             unique: bool = True) -> Iterator[LoopLab]:
    """Volume groups ``names`` (each on its own sparse loop device of ``disk_bytes``).

    With ``unique`` (the default) each real VG name gets a random suffix: ``lab.vg("vg-sda")`` gives it.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"real lvm2 on loop devices is not available: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="reconciler-loopvg-"))
    conf_dir = workdir / "lvm"
    lock_dir = workdir / "lock"
    conf_dir.mkdir()
    lock_dir.mkdir()
    lab = LoopLab(workdir=workdir, env={"LVM_SYSTEM_DIR": str(conf_dir)})
    suffix = secrets.token_hex(3) if unique else ""
    try:
        for name in names:
            image = workdir / f"{name}.img"
            with image.open("wb") as handle:
                handle.truncate(disk_bytes)
            lab.images.append(image)
            lab.loops[name] = _attach(image)
            lab.vg_names[name] = f"{name}-{suffix}" if suffix else name
        (conf_dir / "lvm.conf").write_text(_lvm_conf(list(lab.loops.values()), lock_dir))
        for name in names:
            pv_options = ["--metadatasize", f"{metadata_bytes}b"] if metadata_bytes else []
            lab.lvm("pvcreate", "--yes", *pv_options, lab.loops[name])
            lab.lvm("vgcreate", lab.vg_names[name], lab.loops[name])
        yield lab
    finally:
        _cleanup(lab)


def _cleanup(lab: LoopLab) -> None:
    problems = []
    if (Path(lab.env["LVM_SYSTEM_DIR"]) / "lvm.conf").exists():
        for real_vg in lab.vg_names.values():
            proc = lab.lvm("vgremove", "--force", "--force", "--yes", real_vg, check=False)
            if proc.returncode not in (0, 5):  # 5: the VG was never created
                problems.append(f"vgremove {real_vg}: {proc.stderr.strip()}")
    for name, loop in lab.loops.items():
        image = str(lab.workdir / f"{name}.img")
        # Detach only while the device is still backed by this lab's file.
        if _backing_file(loop) == image:
            proc = _run(["losetup", "--detach", loop], check=False)
            if proc.returncode != 0:
                problems.append(f"losetup --detach {loop}: {proc.stderr.strip()}")
    shutil.rmtree(lab.workdir, ignore_errors=True)
    if problems:
        raise RuntimeError("cleanup of the loop-device lab failed: " + "; ".join(problems))


@contextlib.contextmanager
def plain_loop(disk_bytes: int = 64 * MIB) -> Iterator[str]:
    """One loop device over a fresh sparse file (no LVM), detached on exit."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"loop devices are not available: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="reconciler-loop-"))
    image = workdir / "disk.img"
    loop: str | None = None
    try:
        with image.open("wb") as handle:
            handle.truncate(disk_bytes)
        loop = _attach(image)
        yield loop
    finally:
        if loop is not None and _backing_file(loop) == str(image):
            _run(["losetup", "--detach", loop], check=False)
        shutil.rmtree(workdir, ignore_errors=True)
