"""The lab's desired state: the classic example's structure, scaled down to the lab's disks, on DRBD 8.4.

It lives in a git repository on the host that both nodes' daemons follow (read over the shared root);
scenarios change it by committing, as an operator would.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler_lab import paths
from reconciler_lab.proc import run
from reconciler_lab.qemu import NODES

VM_ID = 100
DATA_LV = "128M"     # each of three legs: a 384 MiB stripe, XFS needs 300 MiB after DRBD's metadata
SWAP_LV = "16M"
GIT_ENV = {"GIT_AUTHOR_NAME": "lab", "GIT_AUTHOR_EMAIL": "lab@localhost", "GIT_COMMITTER_NAME": "lab",
           "GIT_COMMITTER_EMAIL": "lab@localhost"}


POWER_FENCE = "/usr/local/sbin/lab-power-fence"
FENCE_DELAY = 5


def _power_fence(node: str) -> str:
    # The lab's power switch (reconciler_lab/fence_relay.py), reached by the other node's dom0.
    return (f"    power_fence:\n      off: [{POWER_FENCE}, --node={node}, --action=off]\n"
            f"      status: [{POWER_FENCE}, --node={node}, --action=status]\n"
            f"      timeout: 60\n      delay: {FENCE_DELAY}\n")


def cluster_yaml(*, power_fence: bool = True, automatic_failover: bool = False) -> str:
    """With ``power_fence``, fencing is ``resource-and-stonith`` with the lab's power switch; without it,
    ``resource-only`` and no power fence (a cluster that can only ask the peer's daemon).
    ``automatic_failover``: every VM fails over by itself (which needs the power fence, and DRBD's handler is the
    product's own, which finds the peer's management address in /etc/reconciler/reconciler.env)."""
    nodes = "".join(f"  {n.name}:\n    hostname: {n.name}\n    address: {n.address('rep')}\n"
                    f"    volume_groups: [vg-sda, vg-sdb, vg-sdc]\n    drbd_version: \"8.4\"\n"
                    + (_power_fence(n.name) if power_fence else "") for n in NODES)
    policy = "resource-and-stonith" if power_fence else "resource-only"
    failover = "  failover:\n    mode: automatic\n    grace: 30\n" if automatic_failover else ""
    handler = "" if automatic_failover else (
        "    # Asks the peer's daemon over the management link (as the product's own handler does with\n"
        "    # RECONCILER_PEERS from /etc/reconciler/reconciler.env).\n"
        "    fence_peer_handler: /usr/local/sbin/lab-fence-peer\n")
    return f"""# The lab's cluster: two nodes on real Xen 4.17 and DRBD 8.4 (see docs/lab.md).
cluster: lab
nodes:
{nodes}
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
    fencing_policy: {policy}
{handler}  domain:
    type: pv
{failover}guards:
  max_removals_per_revision: 1
  allow_mass_delete: false
"""


# The classic stripe of three data LVs, one in each volume group (the size follows).
STRIPED = """storage:
  layout: dm-striped
  volume_groups: [vg-sda, vg-sdb, vg-sdc]
  stripes: 3
  chunk_sectors: 64
"""


def _domain(memory: str) -> str:
    """The lab's domU: Debian's kernel with the lab's busybox initramfs."""
    return f"""domain:
  memory: {memory}
  vcpus: 1
  kernel: {paths.KERNEL_TREE}/boot/vmlinuz-{paths.kernel_version()}
  ramdisk: {paths.DOMU_INITRD}
  extra: console=hvc0 loglevel=4
"""


def vm_yaml(primary: str = "erdbeere", size: str = DATA_LV) -> str:
    return f"""# The lab's VM {VM_ID}: the classic layout (three swap LVs, a dm stripe of three data LVs, DRBD on
# minor 0, XFS made once on the primary), scaled down; a Debian kernel with a busybox initramfs as the guest.
id: {VM_ID}
nodes: [erdbeere, himbeere]
primary: {primary}
{STRIPED}  size: {size}
swap:
  size: {SWAP_LV}
  volume_groups: [vg-sda, vg-sdb, vg-sdc]
drbd: {{minor: 0, port: 7788, protocol: C}}
filesystem: xfs
{_domain("160M")}"""


def small_vm_yaml(index: int, primary: str = "erdbeere") -> str:
    """One of the benchmark's extra VMs (index 1..): a replicated 8 MiB linear LV on one of the three volume
    groups in turn, no swap, no filesystem, and a 96 MiB domU (the lab's guest, which idles without one).
    Xen's PV builder needs 0x3a00 pages (58 MiB) for Debian's kernel alone, and keeps 0x1000 of the domain's
    pages: at 64 MiB `xl create` fails ("segment kernel too large", seen in the lab)."""
    vg = ("vg-sda", "vg-sdb", "vg-sdc")[index % 3]
    return f"""# A benchmark VM: replicated storage and a small domU, nothing else.
id: {VM_ID + index}
nodes: [erdbeere, himbeere]
primary: {primary}
storage:
  layout: linear
  volume_groups: [{vg}]
  size: 8M
swap:
  size: 4M
  volume_groups: []
drbd: {{minor: {index}, port: {7788 + index}, protocol: C}}
filesystem: none
{_domain("96M")}"""


PROVISIONED_ID = 102
PROVISIONED_LV = "112M"   # three legs: a 336 MiB stripe, room for XFS's 300 MiB beside vm100 and vm101


def provisioned_vm_yaml(image: str, primary: str = "erdbeere", *, live: bool = False) -> str:
    """A VM whose root file system is what the one-time provisioning copies from ``image`` (a tar archive
    under the node's image root) onto its new XFS: its domU boots from it (``lab.root=provisioned``). It has
    no swap LVs (local to each node, they would not move with it), so it may also move live (``live``)."""
    return f"""# A VM installed from a commit: provisioning fills its new XFS once from an image, and its domU boots
# from it (the lab's initramfs switches to the provisioned root).
id: {PROVISIONED_ID}
nodes: [erdbeere, himbeere]
primary: {primary}
{STRIPED}  size: {PROVISIONED_LV}
swap:
  size: 4M
  volume_groups: []
drbd: {{minor: 2, port: 7790, protocol: C}}
filesystem: xfs
provision: {{image: {image}, timeout: 900}}
domain:
  memory: 96M
  vcpus: 1
  kernel: {paths.KERNEL_TREE}/boot/vmlinuz-{paths.kernel_version()}
  ramdisk: {paths.DOMU_INITRD}
  extra: console=hvc0 loglevel=4 lab.root=provisioned
""" + ("  live_migration: true\n" if live else "")


class DesiredRepo:
    """The git repository the daemons follow."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        env_argv = ["env", *(f"{k}={v}" for k, v in GIT_ENV.items())]
        return run((*env_argv, "git", "-C", str(self.path), *args), timeout=60).stdout

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        run(("git", "init", "-q", "-b", "main", str(self.path)), timeout=60)
        self.write(cluster_yaml(), vm_yaml())
        self.commit("lab: initial desired state")

    def write(self, cluster: str, vm: str) -> None:
        (self.path / "vms").mkdir(exist_ok=True)
        (self.path / "cluster.yaml").write_text(cluster)
        (self.path / "vms" / f"vm{VM_ID}.yaml").write_text(vm)

    def write_vm(self, name: str, text: str) -> None:
        (self.path / "vms" / f"{name}.yaml").write_text(text)

    def remove_vm(self, name: str) -> None:
        (self.path / "vms" / f"{name}.yaml").unlink()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        head = self.git("rev-parse", "HEAD").strip()
        # The guests read the repository over 9p as another user's files; let them.
        os.chmod(self.path, 0o755)  # noqa: S103
        return head
