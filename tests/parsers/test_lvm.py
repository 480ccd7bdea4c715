"""lvm2 JSON reports: plain json (strings), json_std (numbers), log sections, segment rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.backends.lvm import parse as lvm
from reconciler.core.parse_error import ParseError

LVS_TWO_LVS = """\
  {
      "report": [
          {
              "lv": [
                  {"lv_name":"root100", "vg_name":"vg-a", "lv_size":"1073741824", "lv_attr":"-wi-a-----",
                   "lv_uuid":"u1", "segtype":"linear", "stripes":"1", "stripe_size":"0",
                   "devices":"/dev/sdb1(0)", "lv_tags":"owner=reconciler,vm100"},
                  {"lv_name":"swap100", "vg_name":"vg-a", "lv_size":"2147483648", "lv_attr":"-wi-a-----",
                   "lv_uuid":"u2", "segtype":"linear", "stripes":"1", "stripe_size":"0",
                   "devices":"/dev/sdb1(256)", "lv_tags":""}
              ]
          }
      ]
  }
"""

LVS_JSON_STD_WITH_LOG = """\
{
    "report": [
        {
            "lv": [
                {"lv_name":"data", "vg_name":"vg-b", "lv_size":536870912, "lv_attr":"-wi-------",
                 "lv_uuid":"u3", "segtype":"striped", "stripes":2, "stripe_size":65536,
                 "devices":["/dev/sdc(0)","/dev/sdd(0)"], "lv_tags":["a","b"]}
            ]
        }
    ]
    ,
    "log": [
        {"log_seq_num":1, "log_type":"status", "log_context":"processing", "log_object_type":"cmd",
         "log_object_name":"", "log_object_id":"", "log_object_group":"", "log_object_group_id":"",
         "log_message":"", "log_errno":0, "log_ret_code":1}
    ]
}
"""

# One LV of three segments: lvm2 prints one row per segment when segment fields are requested.
LVS_SEGMENTS = """\
{"report": [{"lv": [
  {"lv_name":"grown", "vg_name":"vg-c", "lv_size":"3145728", "lv_attr":"-wi-a-----", "lv_uuid":"u4",
   "segtype":"linear", "stripes":"1", "stripe_size":"0", "devices":"/dev/sde(0)", "lv_tags":""},
  {"lv_name":"grown", "vg_name":"vg-c", "lv_size":"3145728", "lv_attr":"-wi-a-----", "lv_uuid":"u4",
   "segtype":"striped", "stripes":"2", "stripe_size":"65536", "devices":"/dev/sde(1),/dev/sdf(0)", "lv_tags":""},
  {"lv_name":"other", "vg_name":"vg-c", "lv_size":"1048576", "lv_attr":"-wi-a-----", "lv_uuid":"u5",
   "segtype":"linear", "stripes":"1", "stripe_size":"0", "devices":"/dev/sdf(1)", "lv_tags":""},
]}]}
"""

VGS_TEXT = """\
  {
      "report": [
          {
              "vg": [
                  {"vg_name":"vg-a", "vg_size":"8585740288", "vg_free":"5364514816", "vg_extent_size":"4194304",
                   "pv_count":"1"},
                  {"vg_name":"vg-b", "vg_size":"1000000000", "vg_free":"0"}
              ]
          }
      ]
  }
"""

PVS_TEXT = """\
{"report": [{"pv": [
  {"pv_name":"/dev/sdb1", "vg_name":"vg-a", "pv_size":"8585740288", "pv_free":"5364514816"},
  {"pv_name":"/dev/sdz", "vg_name":"", "pv_size":"1048576", "pv_free":"1048576"}
]}]}
"""


def test_argv_are_the_fixed_command_lines() -> None:
    assert " ".join(lvm.VGS_ARGV) == (
        "vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size,pv_count"
    )
    assert " ".join(lvm.LVS_ARGV) == (
        "lvs --reportformat json --units b --nosuffix -o "
        "lv_name,vg_name,lv_size,lv_attr,lv_uuid,segtype,stripes,stripe_size,devices,lv_tags"
    )
    assert " ".join(lvm.PVS_ARGV) == "pvs --reportformat json --units b --nosuffix -o pv_name,vg_name,pv_size,pv_free"


def test_lvs_plain_json_numbers_as_strings() -> None:
    root, swap = lvm.parse_lvs(LVS_TWO_LVS)
    assert (root.vg, root.name, root.size_bytes) == ("vg-a", "root100", 1073741824)
    assert root.attributes == "-wi-a-----"
    assert root.uuid == "u1"
    assert (root.segtype, root.stripes, root.stripe_size_bytes) == ("linear", 1, 0)
    assert root.devices == ("/dev/sdb1(0)",)
    assert root.tags == ("owner=reconciler", "vm100")
    assert root.path == "/dev/vg-a/root100"
    assert swap.size_bytes == 2147483648
    assert swap.tags == ()


def test_lvs_json_std_numbers_lists_and_log_section() -> None:
    (data,) = lvm.parse_lvs(LVS_JSON_STD_WITH_LOG)
    assert data.size_bytes == 536870912
    assert (data.segtype, data.stripes, data.stripe_size_bytes) == ("striped", 2, 65536)
    assert data.devices == ("/dev/sdc(0)", "/dev/sdd(0)")
    assert data.tags == ("a", "b")


def test_lvs_segment_rows_merge_into_one_lv() -> None:
    grown, other = lvm.parse_lvs(LVS_SEGMENTS)
    assert (grown.name, grown.size_bytes) == ("grown", 3145728)
    assert grown.devices == ("/dev/sde(0)", "/dev/sde(1)", "/dev/sdf(0)")
    # Mixed segments are reported as such, never as one of them.
    assert grown.segtype == "linear,striped"
    assert grown.stripes is None
    assert grown.stripe_size_bytes is None
    assert other.devices == ("/dev/sdf(1)",)


def test_captured_two_segment_lv_and_tags() -> None:
    text = (Path(__file__).parent / "fixtures" / "lvs-two-segments.json").read_text()
    lin, tagged = lvm.parse_lvs(text)
    assert (lin.vg, lin.name, lin.size_bytes) == ("vgt", "lin", 37748736)
    assert (lin.segtype, lin.stripes, lin.stripe_size_bytes) == ("linear,striped", None, None)
    assert lin.devices == ("/dev/loop2(0)", "/dev/loop3(0)", "/dev/loop4(0)")
    assert (tagged.size_bytes, tagged.tags, tagged.segtype, tagged.stripes) == (
        8388608, ("owner=reconciler", "vm100"), "linear", 1,
    )


def test_lvs_segment_rows_that_disagree_on_size_are_refused() -> None:
    text = LVS_SEGMENTS.replace('"lv_size":"3145728", "lv_attr":"-wi-a-----", "lv_uuid":"u4",\n   "segtype":"striped"',
                                '"lv_size":"999", "lv_attr":"-wi-a-----", "lv_uuid":"u4",\n   "segtype":"striped"')
    with pytest.raises(ParseError, match="disagree on size_bytes"):
        lvm.parse_lvs(text)


def test_lvs_empty_report_is_no_lvs() -> None:
    assert lvm.parse_lvs('{"report": [{"lv": []}]}') == ()


def test_vgs_with_optional_columns_missing() -> None:
    first, second = lvm.parse_vgs(VGS_TEXT)
    assert (first.name, first.size_bytes, first.free_bytes) == ("vg-a", 8585740288, 5364514816)
    assert (first.extent_size_bytes, first.pv_count) == (4194304, 1)
    assert (second.extent_size_bytes, second.pv_count, second.free_bytes) == (None, None, 0)


def test_pvs_orphan_pv_has_no_vg() -> None:
    used, orphan = lvm.parse_pvs(PVS_TEXT)
    assert (used.name, used.vg, used.size_bytes, used.free_bytes) == ("/dev/sdb1", "vg-a", 8585740288, 5364514816)
    assert (orphan.name, orphan.vg) == ("/dev/sdz", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty output"),
        ('{"report": [{"lv": [', "not a JSON report"),
        ("[]", "'report' list"),
        ('{"report": [{"vg": []}]}', "no 'lv' section"),
        ('{"report": [{"lv": {}}]}', "expected a list"),
        ('{"report": [{"lv": [1]}]}', "expected an object"),
        ('{"report": [{"lv": [{"lv_name":"a", "vg_name":"v"}]}]}', "lacks 'lv_size'"),
        ('{"report": [{"lv": [{"lv_name":"a", "vg_name":"v", "lv_size":"1.00g"}]}]}', "--units b --nosuffix"),
        ('{"report": [{"lv": [{"lv_name":"a", "vg_name":"v", "lv_size":true}]}]}', "boolean"),
        ('{"report": [{"lv": [{"lv_name":"a", "vg_name":"v", "lv_size":"-5"}]}]}', "negative"),
        ('{"report": [{"lv": [{"lv_name":"", "vg_name":"v", "lv_size":"5"}]}]}', "'lv_name' is empty"),
        ('{"report": [{"lv": [{"lv_name":7, "vg_name":"v", "lv_size":"5"}]}]}', "expected a string"),
        ('{"report": [{"lv": [{"lv_name":"a", "vg_name":"v", "lv_size":"5", "lv_tags":{}}]}]}', "lv_tags"),
    ],
)
def test_lvs_malformed_reports_raise_parse_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        lvm.parse_lvs(text)
    assert caught.value.tool == "lvs"


def test_truncated_json_names_the_line() -> None:
    text = LVS_TWO_LVS[: LVS_TWO_LVS.index('"swap100"')]
    with pytest.raises(ParseError) as caught:
        lvm.parse_lvs(text)
    assert caught.value.line_no is not None
    assert caught.value.line_no > 1


def test_trailing_comma_before_bracket_is_tolerated() -> None:
    text = '{"report": [{"vg": [{"vg_name":"v", "vg_size":"10", "vg_free":"5"},]}], "log": [{"a":"b"},]}'
    (vg,) = lvm.parse_vgs(text)
    assert (vg.name, vg.size_bytes, vg.free_bytes) == ("v", 10, 5)


def test_float_size_that_is_not_whole_is_refused() -> None:
    row = {"lv_name": "a", "vg_name": "v", "lv_size": 1.5}
    with pytest.raises(ParseError, match="whole number"):
        lvm.parse_lvs(json.dumps({"report": [{"lv": [row]}]}))


def test_lvm_version_skips_device_mapper_noise() -> None:
    text = (
        "/dev/mapper/control: open failed: No such device\n"
        "  LVM version:     2.03.22(2) (2023-08-02)\n"
        "  Library version: 1.02.196 (2023-08-02)\n"
    )
    assert lvm.parse_lvm_version(text) == "2.03.22"


def test_lvm_version_missing_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="LVM version"):
        lvm.parse_lvm_version("command not found\n")
