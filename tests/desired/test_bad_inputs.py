"""A corpus of broken repositories: each must report exactly the expected problems at file:line:col."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.desired.load import collect
from tests.desired.repo import CLUSTER, VM100, VM101, with_drbd84, with_quorum, write_repo

VM = "vms/vm100.yaml"
VM_B = "vms/vm101.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    expected: tuple[str, ...]
    cluster: str | None = CLUSTER
    vms: dict[str, str] = field(default_factory=lambda: {"vm100.yaml": VM100})


def vm(old: str, new: str, base: str = VM100) -> dict[str, str]:
    assert old in base, old
    return {"vm100.yaml": base.replace(old, new, 1)}


def cluster(old: str, new: str, base: str = CLUSTER) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def second(text: str) -> dict[str, str]:
    return {"vm100.yaml": VM100, "vm101.yaml": text}


LONG = "v" * 64

CASES = [
    Case("yaml-syntax", (f"{VM}:13:8: YAML syntax error: did not find expected ',' or ']'",),
         vms=vm("  memory: 4G\n", "  memory: [4G\n")),
    Case("yaml-tab-indent", ("cluster.yaml:4:1: YAML syntax error: found character that cannot start any token",),
         cluster=cluster("    address: 192.168.2.1", "\taddress: 192.168.2.1")),
    Case("duplicate-key", (f"{VM}:4:1: duplicate key 'primary' (first at line 3)",),
         vms=vm("primary: erdbeere\n", "primary: erdbeere\nprimary: himbeere\n")),
    Case("unknown-key-typo", (f"{VM}:3:1: unknown key 'primry'", f"{VM}:1:1: missing required key 'primary'"),
         vms=vm("primary:", "primry:")),
    Case("unknown-nested-key", (f"{VM}:10:3: unknown key 'prot'", f"{VM}:8:1: missing required key 'drbd.port'"),
         vms=vm("  port: 7788", "  prot: 7788")),
    Case("id-is-a-string", (f"{VM}:1:5: id: expected an integer, got a string ('100')",),
         vms=vm("id: 100", 'id: "100"')),
    Case("bool-is-a-string", (f"{VM}:4:12: suspended: expected true or false, got a string ('yes')",),
         vms=vm("storage:", 'suspended: "yes"\nstorage:')),
    Case("size-unparseable", (f"{VM}:5:9: storage.size: '100X' is not a size; write a whole number with an optional "
                              "binary unit (K, M, G, T, P; KiB/KB/k mean the same), e.g. 2G or 100GiB",),
         vms=vm("size: 100G", "size: 100X")),
    Case("size-zero", (f"{VM}:7:9: swap.size: 0 is not positive; a size must be at least one byte",),
         vms=vm("size: 2G", "size: 0")),
    Case("size-not-sectors", (f"{VM}:5:9: size 1000 bytes is not a whole number of 512-byte sectors",),
         vms=vm("size: 100G", "size: 1000")),
    Case("duplicate-id", (f"{VM_B}:1:5: VM id 100 is already used by {VM}",),
         vms=second(VM101.replace("id: 101", "id: 100"))),
    Case("duplicate-name", (f"{VM_B}:2:7: VM name 'vm100' is already used by {VM}",),
         vms=second(VM101.replace("id: 101\n", "id: 101\nname: vm100\n"))),
    Case("minor-twice", (f"{VM_B}:9:10: DRBD minor 0 is already used on node erdbeere by {VM}",),
         vms=second(VM101.replace("minor: 1", "minor: 0"))),
    Case("port-twice", (f"{VM_B}:10:9: DRBD port 7788 is already used on node erdbeere by {VM}",),
         vms=second(VM101.replace("port: 7789", "port: 7788"))),
    Case("stripes-vs-vgs", (f"{VM}:6:12: stripes is 2 but 3 volume group(s) are listed",),
         vms=vm("  size: 100G\n", "  size: 100G\n  stripes: 2\n")),
    Case("vg-not-declared", (f"{VM}:6:35: volume group 'vg-sdd' is not declared on node erdbeere",
                             f"{VM}:6:35: volume group 'vg-sdd' is not declared on node himbeere"),
         vms=vm("  size: 100G\n", "  size: 100G\n  volume_groups: [vg-sda, vg-sdb, vg-sdd]\n")),
    Case("primary-not-a-node", (f"{VM}:3:10: primary 'kiwi' is not one of the VM's nodes",),
         vms=vm("primary: erdbeere", "primary: kiwi")),
    Case("invalid-address", ("cluster.yaml:8:14: nodes.himbeere.address: '192.168.2.256' is not an IPv4 or IPv6 "
                             "address",),
         cluster=cluster("192.168.2.2", "192.168.2.256")),
    Case("duplicate-hostname", ("cluster.yaml:8:15: host name 'erdbeere' is already used by node erdbeere",),
         cluster=cluster("  himbeere:\n", "  himbeere:\n    hostname: erdbeere\n")),
    Case("duplicate-address", ("cluster.yaml:8:14: address 192.168.2.1 is already used by node erdbeere",),
         cluster=cluster("192.168.2.2", "192.168.2.1")),
    Case("quorum-on-84", ("cluster.yaml:26:16: quorum is not available on DRBD 8.4 (node erdbeere runs 8.4)",),
         cluster=with_drbd84(with_quorum()).replace('drbd_version: "8.4"\ndefaults', 'drbd_version: "9"\ndefaults')),
    Case("versions-differ", (f"{VM}:2:8: the VM's nodes run different DRBD versions (erdbeere runs 9, himbeere runs "
                             "8.4)",),
         cluster=cluster('    drbd_version: "9"\ndefaults', '    drbd_version: "8.4"\ndefaults')),
    Case("minor-beyond-84", (f"{VM}:9:10: DRBD 8.4 has minors 0-255 only (node erdbeere runs 8.4)",),
         cluster=with_drbd84(), vms=vm("minor: 0", "minor: 256")),
    Case("drbd-version-unknown", ("cluster.yaml:6:19: nodes.erdbeere.drbd_version: a string ('10') is not allowed",),
         cluster=cluster('drbd_version: "9"', "drbd_version: 10")),
    Case("name-shell-metachar", (f"{VM}:2:7: name: name 'vm;rm' is not a safe name: it contains ';'; use letters, "
                                 "digits, '_', '.', '+' and '-' (starting with a letter or digit)",),
         vms=vm("id: 100\n", "id: 100\nname: vm;rm\n")),
    Case("name-slash-dotdot", ("cluster.yaml:3:3: nodes.../etc: name '../etc' is not a safe name: it contains '..'",),
         cluster=cluster("  erdbeere:", "  ../etc:")),
    Case("name-leading-dash", ("cluster.yaml:5:21: nodes.erdbeere.volume_groups[0]: name '-vg' is not a safe name: "
                               "it starts with '-', which a command would read as an option",),
         cluster=cluster("volume_groups: [vg-sda, vg-sdb, vg-sdc]", "volume_groups: [-vg, vg-sdb, vg-sdc]")),
    Case("name-whitespace", (f"{VM}:2:7: name: name 'vm 1' is not a safe name: it contains ' '; use letters, digits,"
                             " '_', '.', '+' and '-' (starting with a letter or digit)",),
         vms=vm("id: 100\n", "id: 100\nname: vm 1\n")),
    Case("name-too-long", (f"{VM}:2:7: name: name '{LONG}' is not a safe name: it is 64 characters long; at most 63 "
                           "are allowed",),
         vms=vm("id: 100\n", f"id: 100\nname: {LONG}\n")),
    Case("unknown-node", (f"{VM}:2:19: node 'himbere' is not declared in cluster.yaml",),
         vms=vm("nodes: [erdbeere, himbeere]", "nodes: [erdbeere, himbere]")),
    Case("deleted-unconfirmed", (f"{VM}:2:12: lifecycle 'deleted' removes the VM's data and needs confirmation",),
         vms=vm("id: 100\n", "id: 100\nlifecycle: deleted\n")),
    Case("deleted-wrong-confirmation", (f"{VM}:3:17: confirm_delete 'vm101' does not match the VM name 'vm100'",),
         vms=vm("id: 100\n", "id: 100\nlifecycle: deleted\nconfirm_delete: vm101\n")),
    Case("confirm-without-delete", (f"{VM}:2:17: confirm_delete is only allowed with lifecycle: deleted",),
         vms=vm("id: 100\n", "id: 100\nconfirm_delete: vm100\n")),
    Case("split-brain-discard-not-a-node",
         (f"{VM}:2:60: discard 'kiwi' is not one of the VM's nodes: a split brain is resolved on one of the two "
          "nodes that hold its replicas",),
         vms=vm("id: 100\n", "id: 100\nsplit_brain_recovery: {incident: sb-0123456789ab, discard: kiwi}\n")),
    Case("split-brain-incident-malformed",
         (f"{VM}:2:34: split_brain_recovery.incident: 'vm100-1' is not a split-brain incident id",),
         vms=vm("id: 100\n", "id: 100\nsplit_brain_recovery: {incident: vm100-1, discard: erdbeere}\n")),
    Case("split-brain-recovery-of-an-absent-vm",
         (f"{VM}:3:23: split_brain_recovery needs lifecycle: present, not absent",),
         vms=vm("id: 100\n", "id: 100\nlifecycle: absent\nsplit_brain_recovery: {incident: sb-0123456789ab, "
                              "discard: erdbeere}\n")),
    Case("layout-unknown", (f"{VM}:6:11: storage.layout: a string ('raid5') is not allowed",),
         vms=vm("  size: 100G\n", "  size: 100G\n  layout: raid5\n")),
    Case("chunk-not-power-of-two", (f"{VM}:6:18: chunk_sectors 48 is not a power of two of at least 8",),
         vms=vm("  size: 100G\n", "  size: 100G\n  chunk_sectors: 48\n")),
    Case("leg-smaller-than-chunk", (f"{VM}:5:9: each leg (16KiB) is smaller than one chunk (64 sectors)",),
         vms=vm("size: 100G", "size: 16K")),
    Case("linear-with-two-vgs", (f"{VM}:6:18: a linear layout uses exactly one volume group, got 2",),
         vms=vm("  size: 100G\n", "  size: 100G\n  volume_groups: [vg-sda, vg-sdb]\n  layout: linear\n")),
    Case("maxmem-below-memory", (f"{VM}:13:11: maxmem (2GiB) is below memory (4GiB)",),
         vms=vm("  memory: 4G\n", "  memory: 4G\n  maxmem: 2G\n")),
    Case("memory-not-mib", (f"{VM}:12:11: memory 1000KiB is not a whole number of MiB",),
         vms=vm("memory: 4G", "memory: 1000K")),
    Case("bootloader-and-kernel", (f"{VM}:13:11: a domain boots with either a bootloader or a kernel, not both",),
         vms=vm("  memory: 4G\n", "  memory: 4G\n  kernel: /boot/vmlinuz\n")),
    Case("missing-drbd", (f"{VM}:1:1: missing required key 'drbd'",),
         vms=vm("drbd:\n  minor: 0\n  port: 7788\n", "")),
    Case("missing-size", (f"{VM}:4:1: missing setting storage.size",),
         vms=vm("storage:\n  size: 100G\n", "storage:\n  chunk_sectors: 64\n")),
    Case("missing-cluster-file", ("cluster.yaml:1:1: the cluster file is missing",), cluster=None),
    Case("file-is-a-list", (f"{VM}:1:1: the file must be a mapping of settings, got a list",),
         vms={"vm100.yaml": "- id: 100\n- id: 101\n"}),
    Case("two-documents", (f"{VM}:16:1: a second YAML document in one file",),
         vms={"vm100.yaml": VM100 + "---\nid: 101\n"}),
    Case("empty-vm-file", (f"{VM}:1:1: the file is empty",), vms={"vm100.yaml": "# nothing yet\n"}),
    Case("tiebreaker-missing", ("cluster.yaml:26:16: quorum with two replicas needs a diskless tiebreaker node",),
         cluster=with_quorum().replace("    tiebreaker: kiwi\n", "")),
    Case("tiebreaker-is-own-node", ("cluster.yaml:27:17: tiebreaker 'himbeere' is one of the VM's own nodes",),
         cluster=with_quorum().replace("tiebreaker: kiwi", "tiebreaker: himbeere")),
    Case("quorum-option-with-fencing", (f"{VM}:13:17: on_no_quorum belongs to mechanism quorum, not fencing",),
         vms=vm("domain:\n", "safety:\n  mechanism: fencing\n  on_no_quorum: io-error\ndomain:\n")),
    Case("demote-failure-with-fencing",
         (f"{VM}:13:22: on_demote_failure belongs to mechanism quorum, not fencing",),
         vms=vm("domain:\n", "safety:\n  mechanism: fencing\n  on_demote_failure: reboot\ndomain:\n")),
    Case("demote-failure-unknown", (f"{VM}:13:22: safety.on_demote_failure: a string ('halt') is not allowed",),
         vms=vm("domain:\n", "safety:\n  mechanism: fencing\n  on_demote_failure: halt\ndomain:\n")),
    Case("duplicate-mac", (f"{VM_B}:14:12: MAC address 00:16:3e:00:01:00 is already used by {VM}",),
         vms=second(VM101 + "  vifs:\n    - mac: 00:16:3E:00:01:00\n")),
    Case("backend-unknown-hypervisor",
         ("cluster.yaml:9:19: node erdbeere: no hypervisor named 'kvm' is registered",),
         cluster=cluster('    drbd_version: "9"\n',
                         '    drbd_version: "9"\n    backends:\n      replicator: drbd\n      hypervisor: kvm\n')),
    Case("backend-unknown-replicator",
         ("cluster.yaml:7:28: node erdbeere: no replicator named 'drdb' is registered",),
         cluster=cluster('    drbd_version: "9"\n', '    drbd_version: "9"\n    backends: {replicator: drdb}\n')),
    Case("backend-unknown-key", ("cluster.yaml:7:16: unknown key 'hypervisr'",),
         cluster=cluster('    drbd_version: "9"\n', '    drbd_version: "9"\n    backends: {hypervisr: xen}\n')),
    Case("port-out-of-range", (f"{VM}:10:9: drbd.port: 70000 is outside 1-65535: a TCP port number",),
         vms=vm("port: 7788", "port: 70000")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_reported_at_its_place(tmp_path: Path, case: Case) -> None:
    root = write_repo(tmp_path / "repo", case.cluster, case.vms)
    result, issues = collect(str(root))
    assert result is None
    found = tuple(sorted(f"{i.path}:{i.line}:{i.col}: {i.message}" for i in issues))
    assert found == tuple(sorted(case.expected))
    assert all(issue.hint for issue in issues), "every problem comes with a hint how to fix it"


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    broken = VM100.replace("size: 100G", "size: 100X").replace("primary:", "primry:")
    broken_b = VM101.replace("minor: 1", "minor: 0").replace("port: 7789", "port: 7788")
    root = write_repo(tmp_path / "repo", cluster("192.168.2.2", "192.168.2.256"),
                      {"vm100.yaml": broken, "vm101.yaml": broken_b})
    _, issues = collect(str(root))
    found = sorted(f"{i.path}:{i.line}: {i.message.split(':')[0]}" for i in issues)
    # vm101's clashes with vm100 cannot be judged while vm100 itself does not parse, nor any VM against an
    # invalid cluster file; everything else is reported in the same run.
    assert found == [
        "cluster.yaml:8: nodes.himbeere.address",
        f"{VM}:1: missing required key 'primary'",
        f"{VM}:3: unknown key 'primry'",
        f"{VM}:5: storage.size",
    ]


def test_unknown_key_suggests_the_closest_known_key(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", vms=vm("  port: 7788", "  prot: 7788"))
    _, issues = collect(str(root))
    assert [i.hint for i in issues if i.message.startswith("unknown key")] == ["did you mean 'port'?"]


def test_an_unknown_backend_suggests_a_registered_one(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", cluster('    drbd_version: "9"\n',
                                                 '    drbd_version: "9"\n    backends: {replicator: drdb}\n'))
    _, issues = collect(str(root))
    assert [i.hint for i in issues] == [
        "did you mean 'drbd'? (a backend is registered in reconciler/backends/registry.py)"]


def test_unknown_key_in_a_node_suggests_from_the_node_keys(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", cluster("    address: 192.168.2.2", "    adress: 192.168.2.2"))
    _, issues = collect(str(root))
    unknown = [i for i in issues if i.message.startswith("unknown key")]
    assert [(i.path, i.line, i.col, i.hint) for i in unknown] == [
        ("cluster.yaml", 8, 5, "did you mean 'address'?")]
    missing = [i for i in issues if i.message.startswith("missing")]
    assert [(i.line, i.message) for i in missing] == [(7, "missing required key 'nodes.himbeere.address'")]


def test_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    (root / "vms" / "vm7.yaml").write_bytes(b"id: 7\n\xff\xfe\n")
    _, issues = collect(str(root))
    assert [(i.path, i.line, i.message) for i in issues] == [
        ("vms/vm7.yaml", 1, "not UTF-8 text: invalid start byte")]


def test_vm_files_in_subfolders_are_found_and_other_files_reported(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", vms={"vm100.yaml": VM100})
    (root / "vms" / "team-b").mkdir()
    (root / "vms" / "team-b" / "vm101.yml").write_text(VM101.replace("minor: 1", "minor: 0"))
    (root / "vms" / "README.md").write_text("not a VM\n")
    (root / "vms" / ".vm9.yaml.swp").write_text(": editor swap file")
    _, issues = collect(str(root))
    not_read = "is not read: only files ending in .yaml or .yml (lower case) under vms/ describe VMs"
    assert [(i.path, i.line, i.message) for i in issues] == [
        ("vms/README.md", 1, not_read),
        # files are read in path order, so the clash is reported at the later one: vms/vm100.yaml
        (VM, 9, "DRBD minor 0 is already used on node erdbeere by vms/team-b/vm101.yml")]


def test_a_bad_default_is_reported_once_not_per_vm(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", with_quorum().replace("    tiebreaker: kiwi\n", ""),
                      {"vm100.yaml": VM100, "vm101.yaml": VM101})
    _, issues = collect(str(root))
    assert [(i.path, i.line, i.message) for i in issues] == [
        ("cluster.yaml", 26, "quorum with two replicas needs a diskless tiebreaker node")]
