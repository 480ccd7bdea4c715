from __future__ import annotations

import pytest

from reconciler.names import MAX_NAME_LENGTH, UnsafeNameError, check_device_path, check_name, name_problem


@pytest.mark.parametrize(
    "name", ["vm100", "root100", "vg-sda", "erdbeere", "a", "x.y_z+1", "9lives", "a" * MAX_NAME_LENGTH]
)
def test_safe_names_pass_unchanged(name: str) -> None:
    assert check_name(name, "vm") == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("-rf", "starts with '-'"),
        ("a/b", "'/'"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        ("vm 100", "' '"),
        ("vm;reboot", "';'"),
        ("$(id)", "'$'"),
        ("vm\n100", "'\\n'"),
        ("a`b`", "'`'"),
        (".hidden", "'.'"),
        ("a" * (MAX_NAME_LENGTH + 1), "characters long"),
        ("ümlaut", "'ü'"),
    ],
)
def test_unsafe_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(UnsafeNameError) as info:
        check_name(name, "volume group")
    assert reason in str(info.value)
    assert str(info.value).startswith("volume group ")


def test_non_strings_are_refused() -> None:
    assert name_problem(100) == "expected a string, got int"
    with pytest.raises(UnsafeNameError):
        check_name(None)


@pytest.mark.parametrize("path", ["/dev/drbd0", "/dev/vg-sda/root100", "/dev/mapper/root100"])
def test_device_paths(path: str) -> None:
    assert check_device_path(path) == path


@pytest.mark.parametrize("path", ["/etc/passwd", "/dev/../etc", "/dev/vg/-x", "dev/drbd0", "/dev/a/b/c/d", "/dev/a b"])
def test_bad_device_paths(path: str) -> None:
    with pytest.raises(UnsafeNameError):
        check_device_path(path)
