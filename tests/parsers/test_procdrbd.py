"""/proc/drbd of DRBD 8.0, 8.3, 8.4 and 9, and the mapping of minors to resources."""

from __future__ import annotations

import pytest

from reconciler.backends.drbd import procdrbd
from reconciler.core.parse_error import ParseError

PROC_84 = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: 0123456789ABCDEF0123456

 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1048576 nr:0 dw:0 dr:1048776 al:0 bm:64 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 1: cs:Unconfigured

 3: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r---n-
    ns:716992 nr:0 dw:0 dr:719432 al:0 bm:43 lo:0 pe:33 ua:18 ap:0 ep:1 wo:f oos:335744
\t[============>.......] sync'ed: 68.5% (335744/1048576)K
\tfinish: 0:01:05 speed: 64,800 (64,800) K/sec
 4: cs:StandAlone ro:Secondary/Unknown ds:UpToDate/DUnknown   s-----
    ns:0 nr:0 dw:0 dr:200 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1048320
 5: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----
    ns:0 nr:0 dw:0 dr:200 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
"""

PROC_80 = """\
version: 8.0.16 (api:86/proto:86)
GIT-hash: 0000 build by someone
 0: cs:Connected st:Secondary/Primary ds:UpToDate/UpToDate C r---
    ns:0 nr:100 dw:100 dr:0 al:0 bm:1 lo:0 pe:0 ua:0 ap:0
\tresync: used:0/61 hits:0 misses:0 starving:0 dirty:0 changed:0
\tact_log: used:0/257 hits:0 misses:0 starving:0 dirty:0 changed:0
"""

PROC_9 = """\
version: 9.2.12 (api:2/proto:86-122)
GIT-hash: 0000 build by someone, 2024-01-01 00:00:00
Transports (api:21): tcp (9.2.12)
"""


def test_version() -> None:
    assert procdrbd.parse_version(PROC_84) == "8.4.11"
    assert procdrbd.parse_version(PROC_9) == "9.2.12"
    assert procdrbd.parse_version(" 0: cs:Unconfigured\n") is None


def test_84_minors() -> None:
    proc = procdrbd.parse_proc_drbd(PROC_84)
    assert (proc.version, proc.api, proc.is_drbd9) == ("8.4.11", "api:1/proto:86-101", False)
    assert [m.minor for m in proc.minors] == [0, 1, 3, 4, 5]
    m0, m1, m3, m4, m5 = proc.minors
    assert (m0.connection_state, m0.role, m0.peer_role, m0.disk_state, m0.peer_disk_state, m0.protocol) == (
        "Connected", "Primary", "Secondary", "UpToDate", "UpToDate", "C",
    )
    assert m0.out_of_sync_kib == 0
    assert not m1.configured
    assert (m3.resync_percent, m3.resync_eta_seconds, m3.out_of_sync_kib) == (68.5, 65, 335744)
    assert m4.protocol is None
    assert m4.suspended
    assert not m5.suspended


def test_80_uses_st_and_has_no_oos() -> None:
    (minor,) = procdrbd.parse_proc_drbd(PROC_80).minors
    assert (minor.role, minor.peer_role, minor.out_of_sync_kib) == ("Secondary", "Primary", None)


def test_drbd9_has_no_minors() -> None:
    proc = procdrbd.parse_proc_drbd(PROC_9)
    assert proc.is_drbd9
    assert proc.minors == ()


def test_nul_bytes_and_same_line_finish() -> None:
    text = (
        "version: 8.3.7 (api:88/proto:86-91)\n"
        " 2: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r----\x00\n"
        "    ns:0 nr:1 dw:1 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:2048\n"
        "      [>....................] sync'ed:  2.4% (2/2)Mfinish: 1:00:01 speed: 1,000 (1,000) K/sec\n"
    )
    (minor,) = procdrbd.parse_proc_drbd(text).minors
    assert (minor.flags, minor.resync_percent, minor.resync_eta_seconds) == ("r----", 2.4, 3601)


def test_stalled_sync_has_no_eta() -> None:
    text = (
        "version: 8.3.8 (api:88/proto:86-94)\n"
        " 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r----\n"
        "    ns:1 nr:0 dw:1 dr:1 al:1 bm:1 lo:0 pe:0 ua:0 ap:0 ep:1 wo:b oos:100\n"
        "      [>....................] sync'ed:  0.1% (5/5)M delay_probe: 1\n"
        "      stalled\n"
    )
    (minor,) = procdrbd.parse_proc_drbd(text).minors
    assert (minor.resync_percent, minor.resync_eta_seconds) == (0.1, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 0.7.25 (api:79/proto:74)\n", "older than 8.0"),
        ("version: banana\n", "unsupported DRBD version 'banana'"),
        ("version: 8.4.1 (api:1)\n 0: cs:Dancing ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n",
         "unknown connection state"),
        ("version: 8.4.1 (api:1)\n 0: cs:Connected ro:Boss/Secondary ds:UpToDate/UpToDate C r-----\n",
         "unknown role"),
        ("version: 8.4.1 (api:1)\n 0: cs:Connected ro:Primary/Secondary ds:Fine/UpToDate C r-----\n",
         "unknown disk state"),
        ("version: 8.4.1 (api:1)\n 0: cs:Connected\n", "without ro:/ds:"),
        ("version: 8.4.1 (api:1)\n    ns:0 nr:0 oos:0\n", "outside a configured minor"),
        ("version: 8.4.1 (api:1)\n 0: cs:Unconfigured\n    ns:0 oos:0\n", "outside a configured minor"),
        ("version: 8.4.1 (api:1)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n"
         "    ns:0 oos:many\n", "oos"),
        ("version: 8.4.1 (api:1)\nsomething else entirely\n", "unrecognised line"),
        ("version: 8.4.1 (api:1)\n 0: cs:Unconfigured\n 0: cs:Unconfigured\n", "twice"),
        ("version: 8.4.1 (api:1)\nversion: 8.4.1 (api:1)\n", "after the first version line"),
        ("version: 9.1.0 (api:2)\n 0: cs:Unconfigured\n", "expected none"),
        ("version: 8.4.1 (api:1)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n"
         "\tfinish: soon\n", "finish"),
    ],
)
def test_garbage_and_unknown_states(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        procdrbd.parse_proc_drbd(text)
    assert caught.value.tool == "/proc/drbd"


def test_to_drbd_state_maps_minors_to_resources() -> None:
    proc = procdrbd.parse_proc_drbd(PROC_84)
    state = procdrbd.to_drbd_state(proc, {0: "vm100", 3: "vm101", 4: "vm102"}, {"vm100": "node2", "vm101": "node2"})
    assert state.kernel_version == "8.4.11"
    assert state.major == "8.4"
    assert [r.name for r in state.resources] == ["vm100", "vm101", "vm102", "minor-5"]
    vm100 = state.resource("vm100")
    assert vm100 is not None
    assert (vm100.role, vm100.devices[0].minor, vm100.devices[0].disk_state) == ("Primary", 0, "UpToDate")
    (conn,) = vm100.connections
    assert (conn.peer_name, conn.connection_state, conn.peer_role) == ("node2", "Connected", "Secondary")
    assert conn.peer_devices[0].replication_state == "Established"
    vm101 = state.resource("vm101")
    assert vm101 is not None
    peer = vm101.connections[0].peer_devices[0]
    assert (peer.replication_state, peer.peer_disk_state) == ("SyncSource", "Inconsistent")
    assert (peer.resync_percent, peer.resync_eta_seconds, peer.out_of_sync_bytes) == (68.5, 65.0, 335744 * 1024)
    vm102 = state.resource("vm102")
    assert vm102 is not None
    assert vm102.suspended
    assert vm102.connections[0].connection_state == "StandAlone"
    assert vm102.connections[0].peer_name == "unknown"
    assert vm102.connections[0].peer_devices[0].replication_state == "Off"
    unmapped = state.resource("minor-5")
    assert unmapped is not None
    assert unmapped.connections[0].connection_state == "Connecting"


def test_to_drbd_state_numbers_volumes_in_minor_order() -> None:
    proc = procdrbd.parse_proc_drbd(PROC_84)
    state = procdrbd.to_drbd_state(proc, {5: "multi", 0: "multi"})
    (res,) = [r for r in state.resources if r.name == "multi"]
    assert [(d.volume, d.minor) for d in res.devices] == [(0, 0), (1, 5)]


PROC_84_VERIFY = """\
version: 8.4.11 (api:1/proto:86-101)
 0: cs:VerifyS ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1048576 nr:0 dw:0 dr:1048776 al:0 bm:64 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:8
\t[=====>..............] verified: 30.0% (734004/1048576)K
\tfinish: 0:00:30 speed: 10,240 (10,240) want: 10,240 K/sec
"""


def test_84_verify_progress_and_found_blocks() -> None:
    state = procdrbd.to_drbd_state(procdrbd.parse_proc_drbd(PROC_84_VERIFY), {0: "vm100"})
    (peer,) = state.resources[0].connections[0].peer_devices
    assert peer.replication_state == "VerifyS"
    assert peer.verify_percent == 30.0
    assert peer.resync_percent is None  # a verify copies nothing: it is not a resync
    assert peer.out_of_sync_bytes == 8 * 1024
    connected = procdrbd.to_drbd_state(procdrbd.parse_proc_drbd(PROC_84), {0: "vm100"})
    assert connected.resources[0].connections[0].peer_devices[0].verify_percent is None
