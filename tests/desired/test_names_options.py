"""Names that do not follow the id pattern, and DRBD options passed through (what a hand-built VM needs)."""

from __future__ import annotations

from pathlib import Path

from reconciler.desired.expand import expand_node
from reconciler.desired.load import collect
from tests.desired.repo import VM100, write_repo

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
