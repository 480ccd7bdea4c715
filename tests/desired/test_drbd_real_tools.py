"""The rendered DRBD resource files are accepted by the real drbd-utils, for DRBD 9 and for 8.4."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.desired.render import render_node
from tests.conftest import EXAMPLE_DIR, read_capture
from tests.desired.drbdtools import dry_run_up, dump, signature
from tests.desired.repo import CLUSTER, VM100, with_drbd84, with_quorum, write_repo

VERSIONS = ("9", "8.4")
CAPTURED_UP = {"9": "drbdadm-dry-run-up-erdbeere.txt", "8.4": "drbdadm84-dry-run-up-erdbeere.txt"}
# The handler with its argument, as drbdadm reads it back: one quoted string it hands to /bin/sh.
OWN_HANDLER = r'fence-peer\s+"/usr/bin/reconciler fence-peer";'
EXPLICIT_POLICY = "    fencing_policy: resource-and-stonith\n"


def cluster_for(version: str, quorum: bool = False) -> str:
    text = with_quorum() if quorum else CLUSTER
    return with_drbd84(text) if version == "8.4" else text


def render_vm100(tmp_path: Path, cluster: str, node: str = "erdbeere") -> Path:
    repo = write_repo(tmp_path / "repo", cluster, {"vm100.yaml": VM100})
    desired = expand_node(load_cluster(str(repo)), node)
    drbd = next(v.drbd for v in desired.vms if v.name == "vm100")
    assert drbd is not None
    config = tmp_path / "vm100.res"
    config.write_text(drbd.config_text)
    return config


def host_block(text: str, host: str) -> str:
    match = re.search(rf"on {host} \{{(.*?)\}}", text, re.S)
    assert match, f"no 'on {host}' section in the dump"
    return match.group(1)


@pytest.mark.parametrize("version", VERSIONS)
def test_dump_shows_the_classic_resource(tmp_path: Path, version: str) -> None:
    out = dump(version, render_vm100(tmp_path, cluster_for(version)))
    assert re.search(r"protocol\s+C;", out)
    for host, address in (("erdbeere", "192.168.2.1"), ("himbeere", "192.168.2.2")):
        block = host_block(out, host)
        assert re.search(rf"address\s+ipv4 {re.escape(address)}:7788;", block)
        assert re.search(r"device\s+/dev/drbd0 minor 0;", block)
        assert re.search(r"disk\s+/dev/mapper/root100;", block)
        assert re.search(r"meta-disk\s+internal;", block)
    assert re.search(r"al-extents\s+257;", out)
    assert re.search(r"on-io-error\s+detach;", out)
    assert re.search(r"degr-wfc-timeout\s+120;", out)
    for policy in ("after-sb-0pri", "after-sb-1pri", "after-sb-2pri"):
        assert re.search(rf"{policy}\s+disconnect;", out)


def test_dump_on_9_has_no_automatic_promotion_and_fencing_in_net(tmp_path: Path) -> None:
    out = dump("9", render_vm100(tmp_path, cluster_for("9")))
    assert re.search(r"auto-promote\s+no;", out)
    net = re.search(r"net \{(.*?)\}", out, re.S)
    assert net
    assert re.search(r"fencing\s+resource-and-stonith;", net.group(1))
    assert re.search(OWN_HANDLER, out)
    assert "unfence-peer" not in out


def test_dump_on_84_has_fencing_in_disk(tmp_path: Path) -> None:
    out = dump("8.4", render_vm100(tmp_path, cluster_for("8.4")))
    disk = re.search(r"disk \{(.*?)\}", out, re.S)
    assert disk
    assert re.search(r"fencing\s+resource-and-stonith;", disk.group(1))
    assert re.search(OWN_HANDLER, out)
    assert "after-resync-target" not in out
    assert "auto-promote" not in out


@pytest.mark.parametrize("version", VERSIONS)
def test_dry_run_up_matches_the_captured_commands(tmp_path: Path, real_outputs: Path, version: str) -> None:
    ours = [signature(line) for line in dry_run_up(version, render_vm100(tmp_path, cluster_for(version)),
                                                   "erdbeere", "vm100").splitlines() if line.strip()]
    _, code, captured_out, _ = read_capture(real_outputs / "captured-here" / CAPTURED_UP[version])
    assert code == 0
    captured = [signature(line) for line in captured_out.splitlines() if line.strip()]
    # Same commands with the same arguments in the same order; our file only adds explicit options
    # (auto-promote, split-brain policies, fencing), it never drops one the plain file had.
    assert [positional for positional, _ in ours] == [positional for positional, _ in captured]
    for (positional, options), (_, expected) in zip(ours, captured, strict=True):
        assert expected <= options, f"{' '.join(positional)} lost {sorted(expected - options)}"


def test_dry_run_on_9_sets_the_explicit_options(tmp_path: Path) -> None:
    out = dry_run_up("9", render_vm100(tmp_path, cluster_for("9")), "erdbeere", "vm100")
    new_resource = next(line for line in out.splitlines() if " new-resource " in line)
    assert "--auto-promote=no" in new_resource
    new_peer = next(line for line in out.splitlines() if " new-peer " in line)
    for option in ("--after-sb-0pri=disconnect", "--after-sb-1pri=disconnect", "--after-sb-2pri=disconnect",
                   "--fencing=resource-and-stonith", "--allow-two-primaries=no", "--protocol=C"):
        assert option in new_peer


def test_quorum_variant_parses_and_the_tiebreaker_comes_up_diskless(tmp_path: Path) -> None:
    config = render_vm100(tmp_path, cluster_for("9", quorum=True))
    out = dump("9", config)
    assert re.search(r"quorum\s+majority;", out)
    assert re.search(r"on-no-quorum\s+io-error;", out)
    assert re.search(r"disk\s+none;", host_block(out, "kiwi"))
    assert "fencing" not in out
    up = dry_run_up("9", config, "kiwi", "vm100")
    assert re.search(r"new-minor vm100 0 0 --diskless", up)
    assert "drbdmeta" not in up, "a diskless tiebreaker has no metadata to touch"
    data_up = dry_run_up("9", config, "erdbeere", "vm100")
    assert "new-path vm100 2 ipv4:192.168.2.1:7788 ipv4:192.168.2.3:7788" in data_up


@pytest.mark.parametrize("version", VERSIONS)
def test_fencing_variant_with_custom_handlers_parses(tmp_path: Path, version: str) -> None:
    cluster = cluster_for(version).replace(
        "    fencing_policy: resource-and-stonith\n",
        "    fencing_policy: resource-only\n    fence_peer_handler: /usr/lib/drbd/stonith_admin-fence-peer.sh\n",
    )
    out = dump(version, render_vm100(tmp_path, cluster))
    assert re.search(r"fencing\s+resource-only;", out)
    assert re.search(r"fence-peer\s+/usr/lib/drbd/stonith_admin-fence-peer\.sh;", out)



@pytest.mark.parametrize("version", VERSIONS)
def test_default_fencing_is_resource_only_with_the_reconciler_handler(tmp_path: Path, version: str) -> None:
    cluster = cluster_for(version)
    assert EXPLICIT_POLICY in cluster
    out = dump(version, render_vm100(tmp_path, cluster.replace(EXPLICIT_POLICY, "")))
    section = re.search(r"net \{(.*?)\}" if version == "9" else r"disk \{(.*?)\}", out, re.S)
    assert section
    assert re.search(r"fencing\s+resource-only;", section.group(1))
    assert re.search(OWN_HANDLER, out)
    assert "crm-" not in out
    assert "unfence" not in out
    assert "after-resync-target" not in out


def test_default_fencing_reaches_drbdsetup_on_9(tmp_path: Path) -> None:
    config = render_vm100(tmp_path, cluster_for("9").replace(EXPLICIT_POLICY, ""))
    out = dry_run_up("9", config, "erdbeere", "vm100")
    new_peer = next(line for line in out.splitlines() if " new-peer " in line)
    assert "--fencing=resource-only" in new_peer


@pytest.mark.parametrize("version", VERSIONS)
def test_an_explicit_unfence_handler_is_still_rendered(tmp_path: Path, version: str) -> None:
    cluster = cluster_for(version).replace(
        EXPLICIT_POLICY, EXPLICIT_POLICY + "    unfence_peer_handler: /usr/lib/drbd/crm-unfence-peer.9.sh\n")
    out = dump(version, render_vm100(tmp_path, cluster))
    key = "unfence-peer" if version == "9" else "after-resync-target"
    assert re.search(rf"{key}\s+/usr/lib/drbd/crm-unfence-peer\.9\.sh;", out)
    assert re.search(OWN_HANDLER, out)


@pytest.mark.parametrize("version", VERSIONS)
def test_ipv6_addresses_parse(tmp_path: Path, version: str) -> None:
    cluster = cluster_for(version).replace("192.168.2.1", "fd00::1").replace("192.168.2.2", "fd00::2")
    out = dump(version, render_vm100(tmp_path, cluster))
    assert re.search(r"address\s+ipv6 \[fd00::1\]:7788;", host_block(out, "erdbeere"))
    assert re.search(r"address\s+ipv6 \[fd00::2\]:7788;", host_block(out, "himbeere"))


def test_every_resource_of_the_example_parses(tmp_path: Path) -> None:
    cluster = load_cluster(str(EXAMPLE_DIR))
    for node in cluster.nodes:
        files = render_node(expand_node(cluster, node))
        resources = {rel: text for rel, text in files.items() if rel.startswith("etc/drbd.d/")}
        assert resources
        for rel, text in resources.items():
            config = tmp_path / node / rel.rsplit("/", 1)[1]
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(text)
            out = dump(cluster.spec.nodes[node].drbd_version, config)
            assert re.search(r"resource vm\d+ \{", out)
            assert re.search(r"allow-two-primaries\s+(yes|no);", out)
