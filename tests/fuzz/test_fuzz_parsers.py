"""Property-based fuzzing of the parsers tests/parsers/test_properties.py does not reach: the DRBD
configuration reader, the version probes, the env-file reader of the fence handler, sizes, names and peer
endpoints. Each either returns a value or raises its own documented error, in bounded time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.backends.dm.parse import parse_dmsetup_version
from reconciler.backends.drbd.conf import drbd_layout
from reconciler.backends.drbd.utils_version import parse_drbdadm_version
from reconciler.cli.cmd_fence import read_env_file
from reconciler.core.parse_error import ParseError
from reconciler.daemon.peers.peer import parse_endpoint
from reconciler.names import UnsafeNameError, check_name, name_problem
from reconciler.sizes import SizeError, parse_size
from tests.fuzz.budget import budget

DRBD_WORDS = st.sampled_from(["resource", "vm100", "vm101", "on", "erdbeere", "himbeere", "device", "/dev/drbd0",
                              "/dev/drbd1", "minor", "0", "1", "disk", "{", "}", ";", "#", "\"", "address",
                              "10.0.0.1:7788", "volume", "meta-disk", "internal", "\n", " ", "../x", "-o"])
CONFIG = st.lists(DRBD_WORDS, max_size=60).map(" ".join)


@given(texts=st.lists(st.one_of(CONFIG, st.text(max_size=200)), max_size=3))
@budget(300)
def test_drbd_layout(texts: list[str]) -> None:
    try:
        layout = drbd_layout([(f"/etc/drbd.d/r{i}.res", t) for i, t in enumerate(texts)], "erdbeere")
    except ParseError:
        return
    for minor, resource in layout.minor_to_resource.items():
        assert minor >= 0
        assert name_problem(resource) is None


@given(text=st.one_of(st.text(max_size=200), st.sampled_from([
    "Library version:   1.02.185 (2022-05-18)\nDriver version:    4.47.0\n",
    "DRBDADM_BUILDTAG=GIT-hash:\\ x\nDRBDADM_API_VERSION=2\nDRBD_KERNEL_VERSION_CODE=0x090202\n"
    "DRBD_KERNEL_VERSION=9.2.2\nDRBDADM_VERSION_CODE=0x091600\nDRBDADM_VERSION=9.22.0\n"])))
@budget(300)
def test_version_probes(text: str) -> None:
    for parse in (parse_dmsetup_version, parse_drbdadm_version):
        version = parse(text)
        assert version is None or (version and version.isprintable())


@given(text=st.text(max_size=300))
@budget(200)
def test_env_file(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("env") / "reconciler.env"
    path.write_text(text, errors="surrogateescape")
    found = read_env_file(str(path))
    assert all("\n" not in key for key in found)


@given(value=st.one_of(st.text(max_size=40), st.integers(), st.booleans(), st.none(), st.floats()))
@budget(500, deadline_ms=500)
def test_sizes(value: object) -> None:
    try:
        size = parse_size(value)
    except SizeError:
        return
    assert isinstance(size, int)
    assert size > 0


@given(value=st.one_of(st.text(max_size=80), st.integers()))
@budget(500, deadline_ms=500)
def test_names(value: object) -> None:
    try:
        name = check_name(value)
    except UnsafeNameError:
        return
    assert name.isascii()
    assert "/" not in name
    assert not name.startswith(("-", "."))


@given(text=st.text(max_size=60))
@budget(500, deadline_ms=500)
def test_endpoints(text: str) -> None:
    try:
        host, port = parse_endpoint(text)
    except ValueError:
        return
    assert host
    assert 0 < port < 65536
