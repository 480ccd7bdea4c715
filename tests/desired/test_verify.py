"""The verify settings: schedule, rate and algorithm, their defaults, their errors and the rendered options."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.desired.errors import ValidationFailed
from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.desired.verify import VerifySettingError, parse_schedule
from reconciler.model.desired import DesiredDrbd
from tests.desired.drbdtools import dump
from tests.desired.repo import CLUSTER, VM100, VM101, with_drbd84, write_repo

DEFAULT_VERIFY = "  verify:\n    schedule: weekly\n    rate: 10M\n"


def with_default_verify(cluster: str = CLUSTER, text: str = DEFAULT_VERIFY) -> str:
    return cluster.replace("guards:\n", text + "guards:\n", 1)


def drbd_of(repo: Path, vm: str = "vm100", node: str = "erdbeere") -> DesiredDrbd:
    desired = expand_node(load_cluster(str(repo)), node)
    drbd = next(v.drbd for v in desired.vms if v.name == vm)
    assert drbd is not None
    return drbd


def issues_of(repo: Path) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_cluster(str(repo))
    return caught.value.format().splitlines()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("daily", 86400),
        ("weekly", 604800),
        ("12h", 43200),
        ("3d", 259200),
        ("2w", 1209600),
        ("90m", 5400),
        ("off", None),
        ("Weekly", 604800),
    ],
)
def test_schedules(text: str, seconds: int | None) -> None:
    assert parse_schedule(text) == seconds


@pytest.mark.parametrize("text", ["hourly", "30m", "400d", "1.5d", "", "7"])
def test_bad_schedules(text: str) -> None:
    with pytest.raises(VerifySettingError):
        parse_schedule(text)


def test_cluster_default_applies_and_a_vm_overrides_key_by_key(tmp_path: Path) -> None:
    vm101 = VM101 + "verify:\n  schedule: daily\n  alg: sha1\n"
    repo = write_repo(tmp_path / "repo", with_default_verify(), {"vm100.yaml": VM100, "vm101.yaml": vm101})
    verify = drbd_of(repo).verify
    assert verify is not None
    assert (verify.schedule, verify.interval_seconds, verify.alg, verify.rate_bytes) == (
        "weekly",
        604800,
        "sha256",
        10 << 20,
    )
    other = drbd_of(repo, "vm101").verify
    assert other is not None
    assert (other.schedule, other.alg, other.rate_bytes) == ("daily", "sha1", 10 << 20)
    text = drbd_of(repo).config_text
    net = re.search(r"net \{(.*?)\}", text, re.S)
    disk = re.search(r"disk \{(.*?)\}", text, re.S)
    assert net is not None
    assert disk is not None
    assert "verify-alg sha256;" in net.group(1)
    assert "c-max-rate 10240k;" in disk.group(1)
    assert "resync-rate 10240k;" in disk.group(1)


def test_a_vm_opts_out_and_nothing_is_rendered(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", with_default_verify(), {"vm100.yaml": VM100 + "verify:\n  schedule: off\n"})
    drbd = drbd_of(repo)
    assert drbd.verify is None
    assert "verify-alg" not in drbd.config_text
    assert "c-max-rate" not in drbd.config_text


def test_without_verify_the_config_is_unchanged(tmp_path: Path) -> None:
    plain = drbd_of(write_repo(tmp_path / "a", CLUSTER, {"vm100.yaml": VM100})).config_text
    assert "verify-alg" not in plain
    without_rate = drbd_of(
        write_repo(tmp_path / "b", with_default_verify(text="  verify:\n    schedule: daily\n"), {"vm100.yaml": VM100})
    ).config_text
    assert "verify-alg sha256;" in without_rate
    assert "c-max-rate" not in without_rate
    assert "resync-rate" not in without_rate


@pytest.mark.parametrize(
    ("verify", "line", "says"),
    [
        ("verify:\n  schedule: hourly\n", 17, "'hourly' is not a schedule"),
        ("verify:\n  schedule: daily\n  rate: 100K\n", 18, "outside 250K-4G"),
        ("verify:\n  schedule: daily\n  rate: 1500\n", 18, "not a whole number of KiB"),
        ("verify:\n  schedule: daily\n  alg: crc32\n", 18, "verify.alg"),
        ("verify:\n  schedule: daily\n  resync_found: yesterday\n", 18, "is not a verify run id"),
        ("verify:\n  resync_found: 20261206T101500Z\n", 17, "no verify is scheduled"),
        ("verify:\n  schedul: daily\n", 17, "unknown key 'schedul'"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, verify: str, line: int, says: str) -> None:
    repo = write_repo(tmp_path / "repo", CLUSTER, {"vm100.yaml": VM100 + verify})
    issues = issues_of(repo)
    assert len(issues) == 1, issues
    assert issues[0].startswith(f"vms/vm100.yaml:{line}:")
    assert says in issues[0]


def test_options_that_verify_writes_cannot_be_passed_through_too(tmp_path: Path) -> None:
    vm = VM100.replace(
        "  port: 7788\n", "  port: 7788\n  options:\n    disk: {c-max-rate: 50M}\n    net: {verify-alg: md5}\n"
    )
    repo = write_repo(tmp_path / "repo", with_default_verify(), {"vm100.yaml": vm})
    issues = issues_of(repo)
    assert any(i.startswith("cluster.yaml:") and "drbd.options.disk sets c-max-rate" in i for i in issues), issues
    assert any(i.startswith("cluster.yaml:") and "verify-alg is set both" in i for i in issues), issues


def test_resync_found_is_no_default(tmp_path: Path) -> None:
    cluster = with_default_verify(text="  verify:\n    schedule: daily\n    resync_found: 20261206T101500Z\n")
    issues = issues_of(write_repo(tmp_path / "repo", cluster, {"vm100.yaml": VM100}))
    assert any(i.startswith("cluster.yaml:") and "cannot be a default" in i for i in issues), issues


@pytest.mark.parametrize("version", ["9", "8.4"])
def test_drbdadm_accepts_the_rendered_options(tmp_path: Path, version: str) -> None:
    cluster = with_default_verify(with_drbd84() if version == "8.4" else CLUSTER)
    config = tmp_path / "vm100.res"
    config.write_text(drbd_of(write_repo(tmp_path / "repo", cluster, {"vm100.yaml": VM100})).config_text)
    out = dump(version, config)
    assert re.search(r"net \{[^}]*verify-alg\s+sha256;", out)
    assert re.search(r"disk \{[^}]*c-max-rate\s+10240k;", out)
    assert re.search(r"disk \{[^}]*resync-rate\s+10240k;", out)
