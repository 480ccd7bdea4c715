"""scripts/build-deb: the package installs into a clean Debian 12 root and its command works there."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from reconciler import __version__
from tests.package import debroot

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_FILES = (
    "./usr/bin/reconciler",
    "./lib/systemd/system/reconciler.service",
    "./lib/systemd/system/reconciler-shutdown.service",
    "./usr/share/doc/reconciler/examples/reconciler.env.example",
    "./usr/share/doc/reconciler/operations.md",
    "./usr/share/doc/reconciler/copyright",
    "./usr/share/doc/reconciler/changelog.Debian.gz",
    "./usr/share/doc/reconciler/changelog.gz",
    "./usr/share/lintian/overrides/reconciler",
    "./usr/share/reconciler/prometheus/reconciler-alerts.yaml",
    "./usr/share/reconciler/grafana/reconciler-dashboard.json",
    "./usr/share/man/man1/reconciler.1.gz",
)


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = debroot.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run([str(ROOT / "scripts" / "build-deb"), "--out", str(out)], capture_output=True, text=True,
                          timeout=900, check=False, stdin=subprocess.DEVNULL)
    offline = ("Failed to establish a new connection", "Temporary failure in name resolution",
               "Network is unreachable")
    if proc.returncode != 0 and any(marker in proc.stderr for marker in offline):
        pytest.skip(f"scripts/build-deb cannot download the Python dependencies from PyPI: {proc.stderr[-500:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = Path(proc.stdout.strip().splitlines()[-1])
    assert built.exists(), proc.stdout
    return built


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_package_holds_the_command_units_docs_rules_dashboard_and_man_page(deb: Path) -> None:
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    paths = {line.split()[5] for line in listing.splitlines()}
    missing = [path for path in EXPECTED_FILES if path not in paths]
    assert missing == []
    tree = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, timeout=60, check=True)
    with tarfile.open(fileobj=io.BytesIO(tree.stdout)) as archive:
        for unit in ("reconciler.service", "reconciler-shutdown.service"):
            member = archive.extractfile(f"./lib/systemd/system/{unit}")
            assert member is not None
            text = member.read().decode()
            assert "/usr/local/" not in text  # one path for the command: the package's
            assert "/usr/bin/reconciler " in text
        changelog = archive.extractfile("./usr/share/doc/reconciler/changelog.Debian.gz")
        assert changelog is not None
        first = gzip.decompress(changelog.read()).decode().splitlines()[0]
        assert first.startswith(f"reconciler ({__version__}-1) ")
        copyright_file = archive.extractfile("./usr/share/doc/reconciler/copyright")
        assert copyright_file is not None
        assert "Copyright: 2026 The xen-drbd-reconciler authors" in copyright_file.read().decode()
        # Compiled at installation, removed before removal: dpkg never owns byte-code.
        assert not [name for name in archive.getnames() if "__pycache__" in name]
    control = subprocess.run(["dpkg-deb", "--field", str(deb), "Version", "Depends", "Maintainer"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    assert f"Version: {__version__}-1" in control
    assert "python3 (>= 3.11)" in control
    assert "libc6 (>= " in control
    assert "Maintainer: Reconciler maintainers <reconciler@localhost>" in control


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_lintian_finds_no_error_or_warning(deb: Path) -> None:
    """What lintian still reports is overridden in packaging/debian/reconciler.lintian-overrides, with the
    reason; anything else at error or warning level fails (docs/operations.md says what lintian reports)."""
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (scripts/setup installs it)")
    proc = subprocess.run(["lintian", "--fail-on", "error,warning", "--display-info", str(deb)],
                          capture_output=True, text=True, timeout=900, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tags = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == []


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_it_installs_into_a_clean_debian_root_and_runs_there(deb: Path, tmp_path: Path) -> None:
    tarball, why = debroot.ensure_root_tarball()
    if tarball is None:
        pytest.skip(why)
    root = tmp_path / "root"
    debroot.unpack(tarball, root)
    (root / "tmp" / deb.name).write_bytes(deb.read_bytes())

    installed = debroot.in_root(root, ["dpkg", "-i", f"/tmp/{deb.name}"])
    assert installed.returncode == 0, installed.stdout + installed.stderr

    compiled = root / "usr/lib/reconciler/lib/python3.11/site-packages/reconciler/__pycache__"
    assert any(compiled.glob("*.pyc"))  # by postinst, for the installed paths

    version = debroot.in_root(root, ["reconciler", "--version"])
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"reconciler {__version__}"

    # A bare root has no Xen, no DRBD and no desired state: doctor must run and give its verdicts (failing
    # some), not crash.
    doctor = debroot.in_root(root, ["reconciler", "doctor", "--node", "testnode"])
    assert "Traceback" not in doctor.stderr, doctor.stderr
    assert doctor.returncode in (0, 1), doctor.stdout + doctor.stderr
    marks = ("[ok  ]", "[FAIL]", "[WARN]", "[skip]")
    verdicts = [line for line in doctor.stdout.splitlines() if line.startswith(marks)]
    assert len(verdicts) >= 5, doctor.stdout
    assert any(line.startswith("[FAIL] tool xl") for line in verdicts), doctor.stdout
    assert " checks: " in doctor.stdout

    manual = debroot.in_root(root, ["sh", "-c", "zcat /usr/share/man/man1/reconciler.1.gz"])
    assert ".SS fence-peer" in manual.stdout

    # An upgrade (the same version again runs the upgrade path of the maintainer scripts), then removal.
    again = debroot.in_root(root, ["dpkg", "-i", f"/tmp/{deb.name}"])
    assert again.returncode == 0, again.stdout + again.stderr
    removed = debroot.in_root(root, ["dpkg", "--remove", "reconciler"])
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not (root / "usr" / "bin" / "reconciler").exists()
    assert not (root / "usr" / "lib" / "reconciler").exists()
    assert not (root / "lib" / "systemd" / "system" / "reconciler.service").exists()
