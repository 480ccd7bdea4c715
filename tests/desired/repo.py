"""Small desired-state repositories built inside a test's temporary directory."""

from __future__ import annotations

from pathlib import Path

CLUSTER = """\
cluster: classic
nodes:
  erdbeere:
    address: 192.168.2.1
    volume_groups: [vg-sda, vg-sdb, vg-sdc]
    drbd_version: "9"
  himbeere:
    address: 192.168.2.2
    volume_groups: [vg-sda, vg-sdb, vg-sdc]
    drbd_version: "9"
defaults:
  storage:
    layout: dm-striped
    volume_groups: [vg-sda, vg-sdb, vg-sdc]
    chunk_sectors: 64
  drbd:
    protocol: C
    degr_wfc_timeout: 120
    on_io_error: detach
    al_extents: 257
  safety:
    mechanism: fencing
    fencing_policy: resource-and-stonith
  domain:
    bootloader: pygrub
guards:
  max_removals_per_revision: 1
"""

VM100 = """\
id: 100
nodes: [erdbeere, himbeere]
primary: erdbeere
storage:
  size: 100G
swap:
  size: 2G
drbd:
  minor: 0
  port: 7788
domain:
  memory: 4G
  vcpus: 2
  vifs:
    - mac: "00:16:3e:00:01:00"
"""

VM101 = """\
id: 101
nodes: [erdbeere, himbeere]
primary: himbeere
storage:
  layout: linear
  volume_groups: [vg-sdb]
  size: 20G
drbd:
  minor: 1
  port: 7789
domain:
  memory: 1G
"""

# A third node for DRBD 9 quorum: it holds no data, only a diskless replica that breaks ties.
KIWI = """\
  kiwi:
    address: 192.168.2.3
    volume_groups: [vg-sda]
    drbd_version: "9"
"""


def write_repo(root: Path, cluster: str | None = CLUSTER, vms: dict[str, str] | None = None) -> Path:
    """Write ``cluster.yaml`` and ``vms/<name>`` files; ``vms`` defaults to vm100 only."""
    root.mkdir(parents=True, exist_ok=True)
    if cluster is not None:
        (root / "cluster.yaml").write_text(cluster)
    (root / "vms").mkdir(exist_ok=True)
    for name, text in (vms if vms is not None else {"vm100.yaml": VM100}).items():
        (root / "vms" / name).write_text(text)
    return root


def with_quorum(cluster: str = CLUSTER, on_no_quorum: str = "io-error") -> str:
    """The cluster with a tiebreaker node and quorum as the default safety mechanism."""
    text = cluster.replace("defaults:\n", KIWI + "defaults:\n", 1)
    return text.replace(
        "    mechanism: fencing\n    fencing_policy: resource-and-stonith\n",
        f"    mechanism: quorum\n    tiebreaker: kiwi\n    on_no_quorum: {on_no_quorum}\n",
    )


def with_drbd84(cluster: str = CLUSTER) -> str:
    return cluster.replace('drbd_version: "9"', 'drbd_version: "8.4"')
