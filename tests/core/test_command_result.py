"""How a failed command is told in one line."""

from __future__ import annotations

from reconciler.host.base import CommandResult

XL_CREATE = ("Parsing config from /etc/xen/vm101.cfg\n"
             "xc: error: panic: xg_dom_core.c:536: xc_dom_chk_alloc_pages: segment kernel too large "
             "(0x3a00 > 0x4000 - 0x1000 pages): Out of memory\n") + """\
libxl: error: libxl_dom.c:593:libxl__build_dom: xc_dom_build_image failed: Out of memory
libxl: error: libxl_create.c:1867:domcreate_rebuild_done: Domain 5:cannot (re-)build domain: -3
libxl: error: libxl_domain.c:1066:domain_destroy_cb: Domain 5:Destruction of domain failed
"""


def test_the_first_error_line_is_told_before_the_last_line() -> None:
    said = CommandResult(("xl", "create", "/etc/xen/vm101.cfg"), 3, "", XL_CREATE).describe()
    assert said.startswith("`xl create /etc/xen/vm101.cfg` (exit 3): xc: error: panic: ")
    assert "segment kernel too large" in said
    assert said.endswith("[...] libxl: error: libxl_domain.c:1066:domain_destroy_cb: Domain 5:Destruction of domain "
                         "failed")


def test_a_single_line_or_no_error_line_is_told_as_before() -> None:
    one = CommandResult(("drbdadm", "up", "vm100"), 10, "", "vm100: Failure: (114) Lower device is already claimed\n")
    assert one.describe() == "`drbdadm up vm100` (exit 10): vm100: Failure: (114) Lower device is already claimed"
    plain = CommandResult(("lvs",), 5, "", "  Volume group \"vg0\" not found\n  Cannot process volume group vg0\n")
    assert plain.describe() == "`lvs` (exit 5): Cannot process volume group vg0"
    assert CommandResult(("true",), 1, "", "").describe() == "`true` (exit 1)"
