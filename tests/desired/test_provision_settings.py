"""The ``provision`` setting of a VM file, and the node's own provisioning config."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.daemon.node.provision_config import ProvisionConfigError, load_config, parse_config
from reconciler.desired.errors import ValidationFailed
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from tests.desired.repo import VM100, write_repo


def repo_with(tmp_path: Path, setting: str, extra: str = "") -> Path:
    return write_repo(tmp_path, vms={"vm100.yaml": VM100 + extra + f"provision: {setting}\n"})


def issues_of(repo: Path) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_cluster(str(repo))
    return caught.value.format().splitlines()


def test_the_setting_reaches_the_primary_with_the_label_that_proves_the_filesystem_made_for_it(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, "{image: /srv/images/busybox.tar, attempt: 3, timeout: 900}")
    vm = expand_node(load_cluster(str(repo)), "erdbeere").vms[0]
    assert vm.provision is not None
    assert (vm.provision.image, vm.provision.provisioner, vm.provision.attempt, vm.provision.timeout_s) == (
        "/srv/images/busybox.tar", None, 3, 900)
    assert vm.provision.device == "/dev/drbd0"
    assert vm.filesystem is not None
    assert vm.filesystem.label == "rprov-new"


def test_without_the_setting_the_filesystem_keeps_no_label(tmp_path: Path) -> None:
    vm = expand_node(load_cluster(str(write_repo(tmp_path))), "erdbeere").vms[0]
    assert vm.provision is None
    assert vm.filesystem is not None
    assert vm.filesystem.label is None


@pytest.mark.parametrize(("setting", "words"), [
    ("{}", "provision names exactly one of provisioner and image"),
    ("{provisioner: debootstrap, image: /srv/images/x.tar}", "exactly one of provisioner and image"),
    ("{image: srv/images/x.tar}", "is not an absolute path"),
    ("{image: /srv/../etc/shadow}", "'..'"),
    ("{provisioner: 'rm -rf /'}", "not a safe name"),
    ("{provisioner: [/bin/sh, -c, id]}", "provisioner"),
    ("{provisioner: debootstrap, attempt: 0}", "attempt"),
    ("{provisioner: debootstrap, attempt: 1000}", "1000 is outside 1-999"),
    ("{provisioner: debootstrap, timeout: 10}", "10 is outside 60-86400"),
    ("{provisioner: debootstrap, command: [/bin/true]}", "command"),
])
def test_bad_settings_name_the_file_and_line(tmp_path: Path, setting: str, words: str) -> None:
    found = issues_of(repo_with(tmp_path, setting))
    assert any("vm100.yaml:" in line and words in line for line in found), found


def test_provisioning_needs_the_filesystem_the_reconciler_makes(tmp_path: Path) -> None:
    found = issues_of(repo_with(tmp_path, "{provisioner: debootstrap}", extra="filesystem: none\n"))
    assert any("filesystem: none" in line for line in found), found


NODE_CONFIG = """\
image_roots = ["/srv/images", "/var/lib/images/"]

[provisioners.debootstrap-bookworm]
command = ["/usr/sbin/debootstrap", "--variant=minbase", "bookworm", "{target}", "http://deb.debian.org/debian"]

[provisioners.copy-root]
command = ["/usr/local/sbin/copy-root"]
"""


def test_the_node_config_names_the_commands_and_where_images_may_come_from() -> None:
    config = parse_config(NODE_CONFIG, "/etc/reconciler/provisioning.toml")
    assert config.image_roots == ("/srv/images", "/var/lib/images")
    assert config.provisioner("debootstrap-bookworm").argv("/run/x/mnt-1") == (
        "/usr/sbin/debootstrap", "--variant=minbase", "bookworm", "/run/x/mnt-1", "http://deb.debian.org/debian")
    assert config.provisioner("copy-root").argv("/run/x/mnt-1") == ("/usr/local/sbin/copy-root", "/run/x/mnt-1")
    assert config.image_root("/srv/images/busybox.tar") == "/srv/images"
    assert not config.device_nodes


@pytest.mark.parametrize(("text", "words"), [
    ("image_roots = [", "provisioning.toml: "),
    ("images = []", "unknown setting 'images'"),
    ("image_roots = ['srv']", "image_roots[0]"),
    ("device_nodes = 'yes'", "device_nodes: must be true or false"),
    ("[provisioners.x]\ncommand = 'debootstrap'", "provisioners.x.command: must be a list"),
    ("[provisioners.x]\ncommand = ['debootstrap', '{target}']", "give the program's absolute path"),
    ("[provisioners.x]\ncommand = ['/bin/a', '{target}', '{target}']", "may appear once"),
    ("[provisioners.x]\ncommand = ['/bin/a']\nshell = true", "exactly one setting"),
    ("[provisioners.'a b']\ncommand = ['/bin/a']", "not a safe name"),
])
def test_a_bad_node_config_names_the_file_and_the_setting(text: str, words: str) -> None:
    with pytest.raises(ProvisionConfigError, match=r"/etc/reconciler/provisioning\.toml") as caught:
        parse_config(text, "/etc/reconciler/provisioning.toml")
    assert words in str(caught.value)


def test_unknown_provisioners_images_outside_the_roots_and_a_missing_file_are_errors() -> None:
    config = parse_config(NODE_CONFIG)
    with pytest.raises(ProvisionConfigError, match=r"no provisioner 'other' is configured .*copy-root, "
                                                   r"debootstrap-bookworm"):
        config.provisioner("other")
    with pytest.raises(ProvisionConfigError, match="not under an image root"):
        config.image_root("/srv/imagesX/x.tar")
    with pytest.raises(ProvisionConfigError, match="does not exist: this node offers no provisioners"):
        load_config(None)
