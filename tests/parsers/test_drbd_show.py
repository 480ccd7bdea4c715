"""``drbdsetup show``: the runtime allow-two-primaries of each resource, in DRBD 9's and drbdsetup-84's layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.backends.drbd.show import parse_two_primaries
from reconciler.core.parse_error import ParseError
from tests.sim.test_drbd_helpers import DrbdCluster

DRBD9 = '''resource "vm100" {
    options {
    }
    _this_host {
        node-id\t\t\t0;
        volume 0 {
            device\t\t\tminor 0;
            disk\t\t\t"/dev/mapper/root100";
            meta-disk\t\t\tinternal;
        }
    }
    connection {
        _peer_node_id 1;
        path {
            _this_host ipv4 192.168.2.1:7788;
            _remote_host ipv4 192.168.2.2:7788;
        }
        net {
            allow-two-primaries\tyes;
            _name   \t"himbeere";
        }
    }
}

resource "vm101" {
    options {
    }
    connection {
        net {
            _name   \t"himbeere";
        }
    }
}
'''

DRBD84 = '''resource vm100 {
    options {
    }
    net {
        allow-two-primaries\tyes;
    }
    _remote_host {
        address\t\t\tipv4 192.168.2.2:7788;
    }
    _this_host {
        address\t\t\tipv4 192.168.2.1:7788;
        volume 0 {
            device\t\t\tminor 0;
            disk\t\t\t"/dev/mapper/root100";
            meta-disk\t\t\tinternal;
        }
    }
}
'''


def test_drbd9_layout() -> None:
    assert parse_two_primaries(DRBD9) == {"vm100": True, "vm101": False}


def test_drbd84_layout() -> None:
    assert parse_two_primaries(DRBD84) == {"vm100": True}
    assert parse_two_primaries(DRBD84.replace("yes;", "no;")) == {"vm100": False}


def test_nothing_up_is_nothing() -> None:
    assert parse_two_primaries("") == {}


@pytest.mark.parametrize("text", [
    DRBD9[:-3],  # cut off: the braces do not close
    DRBD9.replace("allow-two-primaries\tyes", "allow-two-primaries\tmaybe"),
    "}\n",
    'resource "vm100";\n',
])
def test_malformed_answers_raise(text: str) -> None:
    with pytest.raises(ParseError):
        parse_two_primaries(text)


@pytest.mark.parametrize("version", ["9", "8.4"])
def test_the_simulator_prints_what_the_parser_reads(tmp_path: Path, version: str) -> None:
    cluster = DrbdCluster(tmp_path / "c", drbd_version=version)
    cluster.new_pair()
    show = ("drbdsetup", "show")
    assert parse_two_primaries(cluster.ok("erdbeere", *show).stdout) == {"vm100": False}
    cluster.ok("erdbeere", "drbdadm", "net-options", "--allow-two-primaries=yes", "vm100")
    assert parse_two_primaries(cluster.ok("erdbeere", *show).stdout) == {"vm100": True}
    # A connected peer adopts it, as DRBD's protocol update carries it (8.4: P_PROTOCOL_UPDATE).
    assert parse_two_primaries(cluster.ok("himbeere", *show).stdout) == {"vm100": True}
    cluster.ok("erdbeere", "drbdadm", "net-options", "--allow-two-primaries=no", "vm100")
    assert parse_two_primaries(cluster.ok("erdbeere", *show).stdout) == {"vm100": False}
    assert parse_two_primaries(cluster.ok("himbeere", *show).stdout) == {"vm100": False}
