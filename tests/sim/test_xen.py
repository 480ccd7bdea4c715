"""Simulated xl: the domain life cycle, memory accounting, DRBD roles and live migration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.sim.host import SimHost
from reconciler.sim.state import SimCluster
from reconciler.sim.xen import parse_config, parse_disk
from tests.sim.storage_helpers import GIB, cluster, ok

CFG = """# vm100, written by hand
name = "vm100"
memory = 2048
maxmem = 4096
vcpus = 2
maxvcpus = 4
disk = [ 'phy:/dev/drbd0,xvda1,w',
         'phy:/dev/vg-sda/swap100,xvda2,w' ]
vif = [ 'mac=00:16:3e:00:01:00,bridge=xenbr0' ]
"""
RES = """resource vm100 {
  protocol C;
  net { allow-two-primaries yes; }
  on erdbeere { node-id 0; device /dev/drbd0; disk /dev/vg-sda/root100; address 192.168.2.1:7788; meta-disk internal; }
  on himbeere { node-id 1; device /dev/drbd0; disk /dev/vg-sda/root100; address 192.168.2.2:7788; meta-disk internal; }
}
"""
NODES = ("erdbeere", "himbeere")


@pytest.fixture
def sim(tmp_path: Path) -> Path:
    """Two nodes with vm100's storage, DRBD connected and UpToDate, erdbeere Primary."""
    directory = cluster(tmp_path, size=8 * GIB, vgs=("vg-sda",))
    for node in NODES:
        host = SimHost(directory, node)
        ok(host, "lvcreate", "-L", "1G", "-n", "root100", "vg-sda")
        ok(host, "lvcreate", "-L", "512M", "-n", "swap100", "vg-sda")
        host.write_file("/etc/drbd.d/vm100.res", RES)
        host.write_file("/etc/xen/vm100.cfg", CFG)
        ok(host, "drbdadm", "create-md", "--force", "vm100")
        ok(host, "drbdadm", "up", "vm100")
    ok(SimHost(directory, "erdbeere"), "drbdadm", "primary", "--force", "vm100")
    SimCluster(directory).advance(60)
    return directory


def _domains(host: SimHost) -> dict[str, int]:
    rows = ok(host, "xl", "list").stdout.splitlines()[1:]
    return {row.split()[0]: int(row.split()[1]) for row in rows}


def _free(host: SimHost) -> int:
    line = next(x for x in ok(host, "xl", "info").stdout.splitlines() if x.startswith("free_memory"))
    return int(line.split(":")[1])


def test_create_list_and_free_memory(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    before = _free(host)
    result = ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    assert result.stderr == "Parsing config from /etc/xen/vm100.cfg\n"
    assert _domains(host) == {"Domain-0": 0, "vm100": 1}
    assert _free(host) == before - 2048
    again = host.run(["xl", "create", "/etc/xen/vm100.cfg"])
    assert again.returncode == 3
    assert 'Domain with name "vm100" already exists.' in again.stderr


def test_create_refuses_when_drbd_is_not_primary_here(sim: Path) -> None:
    secondary = SimHost(sim, "himbeere")
    result = secondary.run(["xl", "create", "/etc/xen/vm100.cfg"])
    assert result.returncode == 3
    assert "/dev/drbd0" in result.stderr
    assert "unable to add disk devices" in result.stderr
    assert _domains(secondary) == {"Domain-0": 0}


def test_create_refuses_a_missing_disk_and_a_missing_config(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    ok(host, "lvremove", "-y", "vg-sda/swap100")
    result = host.run(["xl", "create", "/etc/xen/vm100.cfg"])
    assert result.returncode == 3
    assert "failed to stat: /dev/vg-sda/swap100: No such file or directory" in result.stderr
    missing = host.run(["xl", "create", "/etc/xen/nope.cfg"])
    assert missing.stderr == ("Parsing config from /etc/xen/nope.cfg\n"
                              "Failed to read config file: /etc/xen/nope.cfg: No such file or directory\n")


def test_create_refuses_what_does_not_fit_in_memory(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    host.write_file("/etc/xen/big.cfg", 'name = "big"\nmemory = 100000\n')
    result = host.run(["xl", "create", "/etc/xen/big.cfg"])
    assert result.returncode == 3
    assert "Out of memory" in result.stderr


def test_shutdown_without_wait_takes_simulated_time(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    assert ok(host, "xl", "shutdown", "vm100").stderr == "Shutting down domain 1\n"
    assert "---s--" in ok(host, "xl", "list").stdout
    SimCluster(sim).advance(5)
    assert _domains(host) == {"Domain-0": 0}


def test_shutdown_wait_and_destroy(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    waited = ok(host, "xl", "shutdown", "-w", "vm100")
    assert waited.stderr.endswith("Domain 1 has been shut down, reason code 0\n")
    assert _domains(host) == {"Domain-0": 0}
    ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    ok(host, "xl", "destroy", "2")
    assert _domains(host) == {"Domain-0": 0}
    assert host.run(["xl", "destroy", "vm100"]).stderr == "vm100 is an invalid domain identifier (rc=-6)\n"
    assert host.run(["xl", "destroy", "0"]).stderr == "Not destroying domain 0; use -f to force.\n"


def test_mem_set_and_vcpu_set_stay_within_the_maxima(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    ok(host, "xl", "mem-set", "vm100", "3g")
    ok(host, "xl", "vcpu-set", "vm100", "4")
    row = next(x for x in ok(host, "xl", "list").stdout.splitlines() if x.startswith("vm100"))
    assert row.split()[2:4] == ["3072", "4"]
    assert host.run(["xl", "mem-set", "vm100", "5000"]).returncode == 1
    too_many = host.run(["xl", "vcpu-set", "vm100", "5"])
    assert too_many.returncode == 1
    assert "Requested 5 VCPUs, however maxcpus is 4!" in too_many.stderr
    long = json.loads(ok(host, "xl", "list", "-l", "vm100").stdout)
    assert long[0]["config"]["b_info"]["target_memkb"] == 3072 * 1024
    assert long[0]["config"]["nics"][0]["bridge"] == "xenbr0"


def test_migrate_needs_the_target_primary_too(sim: Path) -> None:
    source, target = SimHost(sim, "erdbeere"), SimHost(sim, "himbeere")
    ok(source, "xl", "create", "/etc/xen/vm100.cfg")
    refused = source.run(["xl", "migrate", "vm100", "himbeere"])
    assert refused.returncode == 1
    assert refused.stderr.endswith("Migration failed, resuming at sender.\n")
    assert _domains(source) == {"Domain-0": 0, "vm100": 1}
    ok(target, "drbdadm", "primary", "vm100")
    moved = ok(source, "xl", "migrate", "vm100", "himbeere")
    assert moved.stderr.endswith("Migration successful.\n")
    assert _domains(source) == {"Domain-0": 0}
    assert _domains(target) == {"Domain-0": 0, "vm100": 1}


def test_migrate_needs_the_network(sim: Path) -> None:
    source = SimHost(sim, "erdbeere")
    ok(source, "xl", "create", "/etc/xen/vm100.cfg")
    with SimCluster(sim).transaction() as state:
        state["network"]["cut"].append(["erdbeere", "himbeere"])
    result = source.run(["xl", "migrate", "vm100", "himbeere"])
    assert result.returncode == 1
    assert "No route to host" in result.stderr


def test_config_parser_reads_lists_numbers_and_comments() -> None:
    config = parse_config(CFG + "on_crash = 'restart'; extra = \"console=hvc0\"\n", "/etc/xen/vm100.cfg")
    assert config["memory"] == 2048
    assert config["disk"] == ["phy:/dev/drbd0,xvda1,w", "phy:/dev/vg-sda/swap100,xvda2,w"]
    assert config["on_crash"] == "restart"
    assert config["extra"] == "console=hvc0"


def test_config_parser_reports_the_line_of_a_syntax_error() -> None:
    with pytest.raises(Exception, match=r"/etc/xen/x.cfg:2: config parsing error"):
        parse_config('name = "x"\nmemory 2048\n', "/etc/xen/x.cfg")


@pytest.mark.parametrize(("spec", "expected"), [
    ("phy:/dev/drbd0,xvda1,w", {"target": "/dev/drbd0", "vdev": "xvda1", "mode": "w"}),
    ("/dev/vg/x,raw,xvda,ro", {"target": "/dev/vg/x", "vdev": "xvda", "mode": "r"}),
    ("format=raw, vdev=xvdb, access=rw, target=/dev/drbd1", {"target": "/dev/drbd1", "vdev": "xvdb", "mode": "w"}),
])
def test_disk_specs(spec: str, expected: dict[str, str]) -> None:
    assert parse_disk(spec) == expected


def test_a_dying_domain_shows_as_null_and_keeps_its_resources(sim: Path) -> None:
    from reconciler.sim import faults

    host = SimHost(sim, "erdbeere")
    ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    before = _free(host)
    with SimCluster(sim).transaction() as state:
        faults.zombie(state, "erdbeere", "vm100")
    rows = ok(host, "xl", "list").stdout.splitlines()
    assert rows[2].startswith("(null) ")
    assert rows[2].split()[4] == "--ps-d"
    assert _free(host) == before
    assert [e["config"]["c_info"]["name"] for e in json.loads(ok(host, "xl", "list", "-l").stdout)] == ["Domain-0"]
    again = host.run(["xl", "create", "/etc/xen/vm100.cfg"])
    assert again.returncode == 3
    assert "is mounted in a guest domain" in again.stderr
    assert host.run(["xl", "destroy", "1"]).stderr.endswith("destroy failed (rc=-3)\n")
    with SimCluster(sim).transaction() as state:
        faults.reboot(state, "erdbeere")
    assert _domains(host) == {"Domain-0": 0}


def test_domain_listeners_hear_starts_stops_and_migrations(sim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.sim import faults, xen

    heard: list[tuple[str, str, str]] = []
    monkeypatch.setattr(xen, "_listeners", [lambda state, node, name, event: heard.append((node, name, event))])
    source, target = SimHost(sim, "erdbeere"), SimHost(sim, "himbeere")
    ok(source, "xl", "create", "/etc/xen/vm100.cfg")
    ok(target, "drbdadm", "primary", "vm100")
    ok(source, "xl", "migrate", "vm100", "himbeere")
    with SimCluster(sim).transaction() as state:
        faults.crash(state, "himbeere")
    assert heard == [("erdbeere", "vm100", "start"), ("erdbeere", "vm100", "migrate-out"),
                     ("himbeere", "vm100", "migrate-in"), ("himbeere", "vm100", "stop")]


def test_rename_keeps_the_domain_and_refuses_a_name_in_use(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    host.write_file("/etc/xen/other.cfg", 'name = "other"\nmemory = 256\n')
    ok(host, "xl", "create", "/etc/xen/vm100.cfg")
    ok(host, "xl", "create", "-p", "/etc/xen/other.cfg")
    before = json.loads(ok(host, "xl", "list", "-l", "vm100").stdout)[0]
    renamed = ok(host, "xl", "rename", "vm100", "vm100--kept")
    assert (renamed.stdout, renamed.stderr) == ("", "")
    assert _domains(host) == {"Domain-0": 0, "vm100--kept": 1, "other": 2}
    after = json.loads(ok(host, "xl", "list", "-l", "vm100--kept").stdout)[0]
    assert after["config"]["c_info"]["name"] == "vm100--kept"
    assert (after["domid"], after["config"]["c_info"]["uuid"]) == (before["domid"], before["config"]["c_info"]["uuid"])
    ok(host, "xl", "rename", "1", "vm100")  # by domid, back to its first name
    ok(host, "xl", "rename", "vm100", "vm100")  # its own name: nothing to do, no error
    assert _domains(host) == {"Domain-0": 0, "vm100": 1, "other": 2}
    for taken in ("other", "Domain-0"):
        refused = host.run(["xl", "rename", "vm100", taken])
        assert refused.returncode == 1
        assert refused.stderr == ("libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain 1:Domain with name "
                                  f'"{taken}" already exists.\n'
                                  "Can't rename domain 'vm100'.\n")
    assert _domains(host) == {"Domain-0": 0, "vm100": 1, "other": 2}
    assert "--p---" in next(x for x in ok(host, "xl", "list").stdout.splitlines() if x.startswith("other"))


def test_rename_of_an_unknown_domain_and_its_usage(sim: Path) -> None:
    host = SimHost(sim, "erdbeere")
    unknown = host.run(["xl", "rename", "nope", "vm100"])
    assert (unknown.returncode, unknown.stderr) == (1, "nope is an invalid domain identifier (rc=-6)\n")
    usage = "Usage: xl [-vtTf] rename <Domain> <NewDomainName>\n\nRename a domain.\n\n"
    short = host.run(["xl", "rename", "vm100"])
    assert (short.returncode, short.stdout) == (2, usage)
    assert short.stderr == "'xl rename' requires at least 2 arguments.\n\n"
    helped = host.run(["xl", "rename", "-h"])
    assert (helped.returncode, helped.stdout) == (0, usage)
    bad = host.run(["xl", "rename", "-x", "vm100", "vm101"])
    assert (bad.returncode, bad.stderr) == (2, "option `x' not supported.\n")


def test_an_undefined_migration_resolved_with_destroy_rename_and_unpause(sim: Path) -> None:
    """What docs/operations.md ("Held") tells the operator to do once xl leaves both instances paused."""
    from reconciler.sim import faults

    source, target = SimHost(sim, "erdbeere"), SimHost(sim, "himbeere")
    ok(source, "xl", "create", "/etc/xen/vm100.cfg")
    ok(target, "drbdadm", "primary", "vm100")
    with SimCluster(sim).transaction() as state:
        faults.migrate_undefined(state, "erdbeere")
    failed = source.run(["xl", "migrate", "vm100", "himbeere"])
    assert failed.returncode == 3
    assert "Domain state is now undefined !" in failed.stderr
    assert _domains(source) == {"Domain-0": 0, "vm100--migratedaway": 1}
    assert _domains(target) == {"Domain-0": 0, "vm100--incoming": 1}
    ok(source, "xl", "destroy", "vm100--migratedaway")
    ok(target, "xl", "rename", "vm100--incoming", "vm100")
    ok(target, "xl", "unpause", "vm100")
    ok(source, "drbdadm", "secondary", "vm100")
    assert _domains(source) == {"Domain-0": 0}
    assert _domains(target) == {"Domain-0": 0, "vm100": 1}
    row = next(x for x in ok(target, "xl", "list").stdout.splitlines() if x.startswith("vm100"))
    assert "p" not in row.split()[4]
