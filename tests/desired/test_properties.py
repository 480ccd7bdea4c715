"""Properties over generated VMs: expansion is closed and consistent, and drbdadm accepts every file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired.expand import expand_node, stripe_length_sectors
from reconciler.desired.load import collect
from reconciler.desired.render import render_node
from reconciler.sizes import SECTOR
from tests.desired.drbdtools import dump
from tests.desired.repo import CLUSTER, with_drbd84, with_quorum, write_repo

VGS = ("vg-sda", "vg-sdb", "vg-sdc")


@st.composite
def vm_texts(draw: st.DrawFn) -> tuple[str, str, str]:
    """(cluster text, VM text, layout) for one random but valid VM."""
    version = draw(st.sampled_from(["9", "8.4"]))
    mechanism = draw(st.sampled_from(["fencing", "none"] + (["quorum"] if version == "9" else [])))
    cluster = with_quorum() if mechanism == "quorum" else CLUSTER
    if version == "8.4":
        cluster = with_drbd84(cluster)
    if mechanism == "none":
        cluster = cluster.replace("    mechanism: fencing\n    fencing_policy: resource-and-stonith\n",
                                  "    mechanism: none\n")
    layout = draw(st.sampled_from(["dm-striped", "lvm-striped", "linear"]))
    if layout == "dm-striped":
        vgs = list(draw(st.permutations(VGS)))[: draw(st.integers(2, 3))]
        storage = f"  layout: dm-striped\n  volume_groups: [{', '.join(vgs)}]\n"
    else:
        storage = f"  layout: {layout}\n  volume_groups: [{draw(st.sampled_from(VGS))}]\n"
        if layout == "lvm-striped":
            storage += f"  stripes: {draw(st.integers(2, 4))}\n"
    chunk = draw(st.sampled_from([8, 64, 128, 1024]))
    if layout != "linear":  # a linear VM that names a chunk size is an error (the setting would do nothing)
        storage += f"  chunk_sectors: {chunk}\n"
    size_sectors = draw(st.integers(chunk, 1 << 30))
    swap_vgs = draw(st.lists(st.sampled_from(VGS), unique=True, max_size=3))
    vm_id = draw(st.integers(0, 999999))
    swap = f"swap:\n  size: {draw(st.integers(1, 64))}G\n  volume_groups: [{', '.join(swap_vgs)}]\n"
    text = (
        f"id: {vm_id}\nnodes: [{', '.join(draw(st.permutations(['erdbeere', 'himbeere'])))}]\n"
        f"primary: {draw(st.sampled_from(['erdbeere', 'himbeere']))}\n"
        f"storage:\n{storage}  size: {size_sectors * SECTOR}\n"
        + (swap if swap_vgs else "")
        + f"drbd:\n  minor: {draw(st.integers(0, 255))}\n  port: {draw(st.integers(1024, 65535))}\n"
        f"  protocol: {draw(st.sampled_from(['A', 'B', 'C']))}\n"
        f"domain:\n  memory: {draw(st.integers(128, 65536))}M\n  vcpus: {draw(st.integers(1, 8))}\n"
    )
    return cluster, text, layout


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vm_texts())
def test_generated_vms_expand_consistently_and_parse_with_drbdadm(case: tuple[str, str, str]) -> None:
    cluster_text, vm_text, layout = case
    with tempfile.TemporaryDirectory() as tmp:
        root = write_repo(Path(tmp) / "repo", cluster_text, {"vm.yaml": vm_text})
        cluster, issues = collect(str(root))
        assert issues == [], [i.format() for i in issues]
        assert cluster is not None
        spec = cluster.vms[0]
        for node_name in cluster.nodes:
            node = expand_node(cluster, node_name)
            if not node.vms:
                continue
            vm = node.vms[0]
            lv_paths = {lv.path for lv in vm.lvs}
            assert vm.stripe is None or set(vm.stripe.legs) <= lv_paths
            assert {swap.device for swap in vm.swaps} <= lv_paths
            assert (vm.stripe is not None) == (layout == "dm-striped" and node_name in spec.nodes)
            if vm.stripe is not None:
                assert vm.stripe.length_sectors == stripe_length_sectors(spec.data_size, spec.stripes,
                                                                         spec.chunk_sectors)
                assert vm.stripe.length_sectors % (spec.stripes * spec.chunk_sectors) == 0
                assert vm.stripe.length_sectors * SECTOR <= spec.data_size * spec.stripes
            files = render_node(node)
            assert vm.drbd is not None
            res = Path(tmp) / f"{node_name}.res"
            res.write_text(files[vm.drbd.config_path.lstrip("/")])
            out = dump(node.drbd_version, res)
            assert f"resource {vm.name} {{" in out
            if vm.domain is not None:
                assert vm.domain.disks[0] == vm.drbd.device
                assert files[vm.domain.config_path.lstrip("/")].count("phy:") == len(vm.domain.disks)
