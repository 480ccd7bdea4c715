"""A corpus of hostile desired-state repositories: each is refused with exactly the expected problems, as the
operator sees them (one escaped line per problem), fast and in bounded memory.

The loader is the first thing a push reaches on every node, as root. These cases are what someone who can
push (or a broken editor) could send: expansion and nesting bombs, huge and special files, links out of
the tree, names that forge report lines or recolour a terminal, values no tool can take.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.desired import load, safefs
from reconciler.desired.load import collect
from tests.desired.repo import CLUSTER, VM100, write_repo

VM = "vms/vm100.yaml"
Build = Callable[[Path], None]


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Build
    expected: tuple[str, ...]
    limits: tuple[tuple[object, str, int], ...] = ()  # (module, name, value): a lower bound to reach cheaply
    root_only: bool = False


def vm_text(text: str, name: str = "vm100.yaml") -> Build:
    def build(root: Path) -> None:
        (root / "vms" / name).write_text(text)
    return build


def vm_bytes(data: bytes, name: str = "vm100.yaml") -> Build:
    def build(root: Path) -> None:
        (root / "vms" / name).write_bytes(data)
    return build


def vm_change(old: str, new: str) -> Build:
    assert old in VM100, old
    return vm_text(VM100.replace(old, new, 1))


def cluster_change(old: str, new: str) -> Build:
    assert old in CLUSTER, old

    def build(root: Path) -> None:
        (root / "cluster.yaml").write_text(CLUSTER.replace(old, new, 1))
    return build


def extra_file(name: str, text: str = "id: 1\n") -> Build:
    def build(root: Path) -> None:
        (root / "vms" / name).write_text(text)
    return build


def laughs(levels: int, width: int = 10) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def nested_flow(depth: int) -> str:
    return "id: " + "[" * depth + "]" * depth + "\n"


def nested_block(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + f"{'  ' * depth}v: 1\n"


def fifo(name: str) -> Build:
    def build(root: Path) -> None:
        os.mkfifo(root / name)
    return build


def unix_socket(name: str) -> Build:
    def build(root: Path) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(root / name))
    return build


def device(name: str) -> Build:
    def build(root: Path) -> None:
        os.mknod(root / name, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # a second /dev/null
    return build


def link(name: str, target: str) -> Build:
    def build(root: Path) -> None:
        (root / name).unlink(missing_ok=True)
        os.symlink(target, root / name)
    return build


def replace_vms_with(kind: str) -> Build:
    def build(root: Path) -> None:
        for child in (root / "vms").iterdir():
            child.unlink()
        (root / "vms").rmdir()
        if kind == "file":
            (root / "vms").write_text("id: 1\n")
        else:
            os.symlink("/etc", root / "vms")
    return build


def deep_dirs(depth: int) -> Build:
    def build(root: Path) -> None:
        path = root / "vms"
        for i in range(depth):
            path = path / f"d{i}"
        path.mkdir(parents=True)
        (path / "vm9.yaml").write_text("id: 9\n")
    return build


def many_files(count: int) -> Build:
    def build(root: Path) -> None:
        for i in range(count):
            (root / "vms" / f"x{i:03}.txt").write_text("")
    return build


SHOUT = "is not read: only files ending in .yaml or .yml (lower case) under vms/ describe VMs"
LINK = "is a symbolic link; the desired state is read from regular files only"
BIG = (f"the file has {safefs.MAX_FILE_BYTES + 1} bytes, more than the {safefs.MAX_FILE_BYTES} a desired-state file "
       "may have")
EXPANDS = "expands to more than 50000 values (aliases included)"
DEEP = "nesting deeper than 32 levels"
WIDE_ZERO = "\uff10"  # FULLWIDTH DIGIT ZERO: a digit to str.isdigit(), not to a MAC address


CASES = [
    # --- expansion and nesting ---
    Hostile("billion-laughs-vm", vm_text(laughs(9)), (f"{VM}:5:5: {EXPANDS}",)),
    Hostile("billion-laughs-cluster", lambda r: (r / "cluster.yaml").write_text(CLUSTER + laughs(9)),
            ("cluster.yaml:32:5: " + EXPANDS,)),
    Hostile("billion-laughs-wide", vm_text(laughs(3, width=400)), (f"{VM}:2:5: {EXPANDS}",)),
    Hostile("alias-to-itself", vm_text("id: &a [*a]\n"),
            (f"{VM}:1:5: an alias refers to a node that contains it (a recursive structure)",)),
    Hostile("alias-cycle-in-mapping", vm_text("a: &m {k: *m}\n"),
            (f"{VM}:1:4: an alias refers to a node that contains it (a recursive structure)",)),
    Hostile("nested-flow-40", vm_text(nested_flow(40)), (f"{VM}:1:12: {DEEP}",)),
    Hostile("nested-block-40", vm_text(nested_block(40)), (f"{VM}:10:19: {DEEP}",)),
    Hostile("nested-flow-2000", vm_text(nested_flow(2000)),
            (f"{VM}:1:1004: YAML syntax error: exceeded maximum nesting depth",)),
    # cluster.yaml has 64 values and vm100 34: a budget of 80 runs out in vm100.
    Hostile("total-values-over-budget", lambda r: None,
            (f"{VM}:1:1: the desired state as a whole expands to too many values (aliases included)",),
            limits=((load, "MAX_TOTAL_NODES", 80),)),
    # --- sizes and counts ---
    Hostile("huge-vm-file", vm_text("#" * (safefs.MAX_FILE_BYTES + 1)), (f"{VM}:1:1: {BIG}",)),
    Hostile("huge-cluster-file", lambda r: (r / "cluster.yaml").write_text("#" * (safefs.MAX_FILE_BYTES + 1)),
            (f"cluster.yaml:1:1: {BIG}",)),
    # Entries are counted in name order: vm100.yaml, then x000.txt to x018.txt, and the 21st stops the scan.
    Hostile("too-many-files", many_files(30),
            ("vms:1:1: more than 20 files and directories under vms/",
             *(f"vms/x{i:03}.txt:1:1: {SHOUT}" for i in range(19))),
            limits=((safefs, "MAX_FILES", 20),)),
    Hostile("too-many-bytes", lambda r: [extra_file(f"vm{i}.yaml", "#" * 600)(r) for i in range(3)],
            ("vms/vm0.yaml:1:1: the file is empty", "vms/vm1.yaml:1:1: the file is empty",
             "vms/vm2.yaml:1:1: the desired state is larger than 2000 bytes in all"),
            limits=((safefs, "MAX_TOTAL_BYTES", 2000),)),
    Hostile("dirs-too-deep", deep_dirs(10),
            ("vms/d0/d1/d2/d3/d4/d5/d6/d7:1:1: directories nested deeper than 8 levels",)),
    Hostile("number-with-5000-digits", vm_change("id: 100", "id: " + "1" * 5000),
            (f"{VM}:1:5: a number written with 5000 characters", f"{VM}:1:5: id: expected an integer, got a "
             f"string ({'1' * 57 + '...'!r})")),
    # --- special files and links ---
    Hostile("fifo-vm", fifo("vms/x.yaml"),
            ("vms/x.yaml:1:1: is a FIFO (named pipe); the desired state is read from regular files only",)),
    Hostile("fifo-cluster", lambda r: ((r / "cluster.yaml").unlink(), fifo("cluster.yaml")(r)),
            ("cluster.yaml:1:1: is a FIFO (named pipe); the desired state is read from regular files only",)),
    Hostile("socket-vm", unix_socket("vms/s.yaml"),
            ("vms/s.yaml:1:1: is a socket; the desired state is read from regular files only",)),
    Hostile("device-vm", device("vms/null.yaml"),
            ("vms/null.yaml:1:1: is a device file; the desired state is read from regular files only",),
            root_only=True),
    Hostile("link-to-shadow", link("vms/x.yaml", "/etc/shadow"), (f"vms/x.yaml:1:1: {LINK}",)),
    Hostile("link-cluster", link("cluster.yaml", "/etc/passwd"), (f"cluster.yaml:1:1: {LINK}",)),
    Hostile("link-dir-loop", link("vms/loop", "."), (f"vms/loop:1:1: {LINK}",)),
    Hostile("link-dir-up", link("vms/up", "../../../../../../etc"), (f"vms/up:1:1: {LINK}",)),
    Hostile("link-dangling", link("vms/gone.yaml", "/nonexistent"), (f"vms/gone.yaml:1:1: {LINK}",)),
    Hostile("vms-is-a-link", replace_vms_with("link"), (f"vms:1:1: {LINK}",)),
    Hostile("vms-is-a-file", replace_vms_with("file"),
            ("vms:1:1: is not a regular file; the desired state is read from regular files only",)),
    # --- names that are not what they look like ---
    Hostile("upper-case-suffix", extra_file("x.YAML"), (f"vms/x.YAML:1:1: {SHOUT}",)),
    Hostile("json-file", extra_file("vm2.json", "{}"), (f"vms/vm2.json:1:1: {SHOUT}",)),
    Hostile("backup-file", extra_file("vm2.yaml~"), (f"vms/vm2.yaml~:1:1: {SHOUT}",)),
    Hostile("yaml-dot-txt", extra_file("vm2.yaml.txt"), (f"vms/vm2.yaml.txt:1:1: {SHOUT}",)),
    Hostile("hidden-vm-file", extra_file(".vm2.yaml"),
            ("vms/.vm2.yaml:1:1: is a hidden file and is not read",)),
    Hostile("newline-in-name", extra_file("vm\n100.txt"), (f"vms/vm\\n100.txt:1:1: {SHOUT}",)),
    Hostile("forged-line-in-name", extra_file("x.txt\ncluster.yaml:1:1: all good"),
            (f"vms/x.txt\\ncluster.yaml:1:1: all good:1:1: {SHOUT}",)),
    Hostile("ansi-escape-in-name", extra_file("\x1b[2J\x1b[32mok.txt"), (f"vms/\\x1b[2J\\x1b[32mok.txt:1:1: {SHOUT}",)),
    Hostile("bidi-override-in-name", extra_file("\u202elmay.txt"), (f"vms/\\u202elmay.txt:1:1: {SHOUT}",)),
    Hostile("ansi-escape-in-node-name", cluster_change("  himbeere:", "  \"\\e[31mhimbeere\":"),
            ("cluster.yaml:7:3: nodes.\\x1b[31mhimbeere: name '\\x1b[31mhimbeere' is not a safe name: it contains "
             "'\\x1b', '['; use letters, digits, '_', '.', '+' and '-' (starting with a letter or digit)",)),
    Hostile("newline-in-vm-name", vm_change("id: 100\n", 'id: 100\nname: "vm\\nx"\n'),
            (f"{VM}:2:7: name: name 'vm\\nx' is not a safe name: it contains '\\n'; use letters, digits, '_', '.', "
             "'+' and '-' (starting with a letter or digit)",)),
    # --- encodings ---
    Hostile("latin-1", vm_bytes(b"id: 100\nname: caf\xe9\n"),
            (f"{VM}:1:1: not UTF-8 text: invalid continuation byte",)),
    Hostile("utf-16", vm_bytes("id: 100\n".encode("utf-16")), (f"{VM}:1:1: not UTF-8 text: invalid start byte",)),
    Hostile("nul-byte", vm_bytes(b"id: 100\x00\n"),
            (f"{VM}:1:8: a character YAML does not allow: U+0000",)),
    # --- values out of range ---
    Hostile("size-2-pow-64", vm_change("size: 100G", "size: 18446744073709551616"),
            (f"{VM}:5:9: storage.size: 16384PiB is more than 8191PiB: LVM cannot address 8 EiB or more",)),
    Hostile("size-9000P", vm_change("size: 100G", "size: 9000P"),
            (f"{VM}:5:9: storage.size: 9000PiB is more than 8191PiB: LVM cannot address 8 EiB or more",)),
    Hostile("swap-9000P", vm_change("size: 2G", "size: 9000P"),
            (f"{VM}:7:9: swap.size: 9000PiB is more than 8191PiB: LVM cannot address 8 EiB or more",)),
    Hostile("vcpus-1e11", vm_change("vcpus: 2", "vcpus: 100000000000"),
            (f"{VM}:13:10: domain.vcpus: 100000000000 is more than 512: Xen gives one guest at most a few hundred "
             "vCPUs (PVH and HVM guests: 128)",)),
    Hostile("maxvcpus-513", vm_change("vcpus: 2", "vcpus: 2\n  maxvcpus: 513"),
            (f"{VM}:14:13: domain.maxvcpus: 513 is more than 512: Xen gives one guest at most a few hundred vCPUs "
             "(PVH and HVM guests: 128)",)),
    Hostile("memory-17T", vm_change("memory: 4G", "memory: 17T"),
            (f"{VM}:12:11: domain.memory: 17TiB is more than 16TiB: Xen supports at most 16 TiB of memory on a "
             "host",)),
    Hostile("maxmem-1P", vm_change("memory: 4G", "memory: 4G\n  maxmem: 1P"),
            (f"{VM}:13:11: domain.maxmem: 1PiB is more than 16TiB: Xen supports at most 16 TiB of memory on a "
             "host",)),
    Hostile("stripes-129", vm_change("size: 100G", "size: 100G\n  stripes: 129"),
            (f"{VM}:6:12: storage.stripes: 129 is more than 128: LVM stripes over at most 128 devices",)),
    Hostile("chunk-2-pow-32", vm_change("size: 100G", "size: 100G\n  chunk_sectors: 4294967296"),
            (f"{VM}:6:18: storage.chunk_sectors: 4294967296 is more than 2147483648: dm-stripe keeps the chunk in "
             "32 bits",)),
    Hostile("wfc-timeout-1e9", vm_change("port: 7788", "port: 7788\n  wfc_timeout: 1000000000"),
            (f"{VM}:11:16: drbd.wfc_timeout: 1000000000 is more than 300000: DRBD refuses longer timeouts",)),
    Hostile("degr-wfc-default-1e9", cluster_change("degr_wfc_timeout: 120", "degr_wfc_timeout: 1000000000"),
            ("cluster.yaml:18:23: defaults.drbd.degr_wfc_timeout: 1000000000 is more than 300000: DRBD refuses "
             "longer timeouts",)),
    Hostile("cmdline-3000", vm_change("vcpus: 2", "vcpus: 2\n  extra: " + "a" * 3000),
            (f"{VM}:14:10: domain.extra: 3000 characters are more than 2048: Linux truncates a longer kernel "
             "command line",)),
    Hostile("cmdline-injection", vm_change("vcpus: 2", "vcpus: 2\n  extra: \"x\\\" ; rm -rf /\""),
            (f"{VM}:14:10: domain.extra: 'x\" ; rm -rf /' contains characters that cannot be written safely into "
             "the domain config",)),
    Hostile("port-0", vm_change("port: 7788", "port: 0"),
            (f"{VM}:10:9: drbd.port: 0 is outside 1-65535: a TCP port number",)),
    Hostile("port-65536", vm_change("port: 7788", "port: 65536"),
            (f"{VM}:10:9: drbd.port: 65536 is outside 1-65535: a TCP port number",)),
    Hostile("minor-negative", vm_change("minor: 0", "minor: -1"),
            (f"{VM}:9:10: drbd.minor: -1 is outside 0-1048575: DRBD minor numbers have 20 bits",)),
    Hostile("minor-2-pow-20", vm_change("minor: 0", "minor: 1048576"),
            (f"{VM}:9:10: drbd.minor: 1048576 is outside 0-1048575: DRBD minor numbers have 20 bits",)),
    Hostile("id-negative", vm_change("id: 100", "id: -1"),
            (f"{VM}:1:5: id: -1 is out of range (input should be greater than or equal to 0)",)),
    Hostile("id-1e12", vm_change("id: 100", "id: 1000000000000"),
            (f"{VM}:1:5: id: 1000000000000 is out of range (input should be less than or equal to 999999)",)),
    Hostile("al-extents-1e9", cluster_change("al_extents: 257", "al_extents: 1000000000"),
            ("cluster.yaml:20:17: defaults.drbd.al_extents: 1000000000 is out of range (input should be less than "
             "or equal to 65534)",)),
    Hostile("removals-1e7", cluster_change("max_removals_per_revision: 1", "max_removals_per_revision: 10000000"),
            ("cluster.yaml:27:30: guards.max_removals_per_revision: 10000000 is out of range (input should be less "
             "than or equal to 1000000)",)),
    Hostile("vcpus-float-inf", vm_change("vcpus: 2", "vcpus: 1e400"),
            (f"{VM}:13:10: domain.vcpus: expected an integer, got a string ('1e400')",)),
    Hostile("memory-nan", vm_change("memory: 4G", "memory: .nan"),
            (f"{VM}:12:11: domain.memory: nan is not a size; write e.g. 2G, 512MiB or a number of bytes",)),
    # --- names and paths that reach commands ---
    Hostile("name-command-substitution", vm_change("id: 100\n", "id: 100\nname: $(reboot)\n"),
            (f"{VM}:2:7: name: name '$(reboot)' is not a safe name: it contains '$', '(', ')'; use letters, digits, "
             "'_', '.', '+' and '-' (starting with a letter or digit)",)),
    Hostile("vg-path-traversal", cluster_change("volume_groups: [vg-sda, vg-sdb, vg-sdc]\n    drbd_version: \"9\"\n"
                                                "  himbeere", "volume_groups: [../../dev/sda, vg-sdb, vg-sdc]\n"
                                                "    drbd_version: \"9\"\n  himbeere"),
            ("cluster.yaml:5:21: nodes.erdbeere.volume_groups[0]: name '../../dev/sda' is not a safe name: it "
             "contains '..'",)),
    Hostile("kernel-path-with-semicolon", vm_change("vcpus: 2", "vcpus: 2\n  bootloader: /usr/bin/x;reboot"),
            (f"{VM}:14:15: domain.bootloader: path component 'x;reboot' is not a safe name: it contains ';'; use "
             "letters, digits, '_', '.', '+' and '-' (starting with a letter or digit)",)),
    Hostile("address-with-command", cluster_change("192.168.2.2", "'192.168.2.2; reboot'"),
            ("cluster.yaml:8:14: nodes.himbeere.address: '192.168.2.2; reboot' is not an IPv4 or IPv6 address",)),
    Hostile("mac-with-fullwidth-digits", vm_change('"00:16:3e:00:01:00"', f'"{WIDE_ZERO * 2}:16:3e:00:01:00"'),
            (f"{VM}:15:12: domain.vifs[0].mac: '{WIDE_ZERO * 2}:16:3e:00:01:00' is not a MAC address like "
             "00:16:3e:00:01:00",)),
    # --- YAML features that mean nothing here ---
    Hostile("python-object-tag", vm_change("id: 100", "id: !!python/object:os.system [reboot]"),
            (f"{VM}:1:5: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'",
             f"{VM}:1:5: id: expected an integer, got a list")),
    Hostile("custom-tag", vm_change("id: 100", "id: !reboot 100"),
            (f"{VM}:1:5: unsupported YAML tag '!reboot'", f"{VM}:1:5: id: expected an integer, got a string ('100')")),
    Hostile("binary-size", vm_change("size: 100G", "size: !!binary MTAwRw=="),
            (f"{VM}:5:9: storage.size: 'MTAwRw==' is not a size; write a whole number with an optional binary unit "
             "(K, M, G, T, P; KiB/KB/k mean the same), e.g. 2G or 100GiB",)),
    Hostile("list-as-key", vm_change("id: 100", "id: 100\n[a, b]: 1"), (f"{VM}:2:1: a key must be plain text",)),
    Hostile("merge-key", vm_change("id: 100", "id: 100\n<<: {primary: himbeere}"),
            (f"{VM}:2:1: unknown key '<<'",)),
]


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Callable[[Hostile], None]:
    def apply(case: Hostile) -> None:
        for module, name, value in case.limits:
            monkeypatch.setattr(module, name, value)
    return apply


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_repository_is_refused_with_the_expected_problems(tmp_path: Path, case: Hostile,
                                                                  limits: Callable[[Hostile], None]) -> None:
    if case.root_only and os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    root = write_repo(tmp_path / "repo")
    case.build(root)
    limits(case)
    cluster, issues = collect(str(root))
    assert cluster is None
    shown = tuple(sorted(issue.format().split(" (hint: ")[0] for issue in issues))
    assert shown == tuple(sorted(case.expected))
    for issue in issues:
        line = issue.format(str(root))
        assert issue.hint
        assert line.isprintable(), f"{line!r} would reach the terminal raw"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)


def test_the_directory_given_may_not_be_a_link(tmp_path: Path) -> None:
    real = write_repo(tmp_path / "real")
    (tmp_path / "alias").symlink_to(real)
    _, issues = collect(str(tmp_path / "alias"))
    assert [i.format() for i in issues] == [
        f"{tmp_path / 'alias'}:1:1: is a symbolic link, not a directory (hint: give the real directory (the output "
        "of `realpath`), not a link to it; a link is never followed)"]
    (tmp_path / "up").symlink_to(tmp_path)
    _, issues = collect(str(tmp_path / "up" / "real"))
    assert issues[0].message == f"{tmp_path / 'up'} is a symbolic link, not a directory"


@pytest.mark.timeout(20)
def test_validate_on_a_fifo_answers_at_once_with_one_escaped_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.cli.main import main

    root = write_repo(tmp_path / "repo")
    os.mkfifo(root / "vms" / "x\x1b[2J.yaml")
    assert main(["validate", str(root)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{root}/vms/x\\x1b[2J.yaml:1:1: is a FIFO (named pipe); the desired state is read from regular "
                   "files only (hint: commit the file itself (not a link, pipe or device) or remove it)",
                   "1 problem(s) found"]
