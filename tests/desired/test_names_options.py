"""Names that do not follow the id pattern, and DRBD options passed through (what a hand-built VM needs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.desired.expand import expand_node
from reconciler.desired.load import collect, load_cluster
from tests.desired.drbdtools import drbdadm, dump, run
from tests.desired.repo import CLUSTER, VM100, with_drbd84, write_repo

NAMED = VM100.replace("drbd:\n  minor: 0\n  port: 7788\n", """\
names: {data_lv: data-web, swap_lv: swap-web, resource: r0}
drbd:
  minor: 3
  port: 7790
  options:
    net: {sndbuf-size: 512k, max-buffers: 8000}
    disk: {c-plan-ahead: "0"}
""")


def test_explicit_names_and_passed_through_options_reach_every_rendered_file(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, vms={"vm100.yaml": NAMED})
    cluster, issues = collect(str(repo))
    assert cluster is not None, [i.message for i in issues]
    vm = expand_node(cluster, "erdbeere").vms[0]
    assert {lv.name for lv in vm.lvs} == {"data-web", "swap-web"}
    assert vm.stripe is not None
    assert vm.stripe.name == "data-web"
    assert vm.drbd is not None
    assert vm.drbd.name == "r0"
    assert vm.drbd.config_path == "/etc/drbd.d/r0.res"
    text = vm.drbd.config_text
    assert "resource r0 {" in text
    assert "disk /dev/mapper/data-web;" in text
    assert "max-buffers 8000;" in text
    assert "sndbuf-size 512k;" in text
    assert "c-plan-ahead 0;" in text


def test_options_the_schema_sets_itself_are_refused(tmp_path: Path) -> None:
    text = NAMED.replace("sndbuf-size: 512k", "protocol: A")
    repo = write_repo(tmp_path, vms={"vm100.yaml": text})
    cluster, issues = collect(str(repo))
    assert cluster is None
    assert any("'protocol' is set by the schema's own settings" in i.message for i in issues)


def test_an_option_value_that_could_break_the_file_is_refused(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, vms={"vm100.yaml": NAMED.replace("512k", '"1; }"')})
    cluster, issues = collect(str(repo))
    assert cluster is None
    assert any("is not a DRBD option value" in i.message for i in issues)


def test_an_explicit_resource_name_may_not_collide_with_another_vm(tmp_path: Path) -> None:
    other = NAMED.replace("id: 100", "id: 101").replace("minor: 3", "minor: 4").replace("7790", "7791").replace(
        "00:16:3e:00:01:00", "00:16:3e:00:01:01").replace("data-web", "data-db").replace("swap-web", "swap-db")
    repo = write_repo(tmp_path, vms={"vm100.yaml": NAMED, "vm101.yaml": other})
    cluster, issues = collect(str(repo))
    assert cluster is None
    assert any("DRBD resource 'r0' is already used" in i.message for i in issues)


@pytest.mark.parametrize("version", ["9", "8.4"])
def test_the_real_drbdadm_accepts_names_and_passed_through_options(tmp_path: Path, version: str) -> None:
    cluster = with_drbd84(CLUSTER) if version == "8.4" else CLUSTER
    repo = write_repo(tmp_path / "repo", cluster, {"vm100.yaml": NAMED})
    drbd = expand_node(load_cluster(str(repo)), "erdbeere").vms[0].drbd
    assert drbd is not None
    config = tmp_path / "r0.res"
    config.write_text(drbd.config_text)
    out = dump(version, config)
    assert re.search(r"resource r0 \{", out)
    assert re.search(r"sndbuf-size\s+512k;", out)
    assert re.search(r"max-buffers\s+8000;", out)
    assert re.search(r"disk\s+/dev/mapper/data-web;", out)


def test_an_option_drbd_does_not_know_is_caught_by_drbdadm(tmp_path: Path) -> None:
    # The schema checks the form of an option only; drbdadm is what knows DRBD's options.
    repo = write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": NAMED.replace("max-buffers", "max-bufers")})
    drbd = expand_node(load_cluster(str(repo)), "erdbeere").vms[0].drbd
    assert drbd is not None
    config = tmp_path / "r0.res"
    config.write_text(drbd.config_text)
    result = run([drbdadm("9"), "-c", str(config), "dump", "all"], tmp_path)
    assert result.returncode != 0
    assert "max-bufers" in result.stderr
