"""Property tests: random text and mutated outputs fed to every parser. Whatever goes in, the only
exception that may come out is ParseError; and what comes out of a successful parse is a valid model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.backends.dm import parse as dmsetup
from reconciler.backends.drbd import drbd9, events2, procdrbd
from reconciler.backends.lvm import parse as lvm
from reconciler.backends.xen import xl
from reconciler.core.parse_error import ParseError
from reconciler.model.observed import DrbdState
from reconciler.observe import blkid
from tests.parsers import test_dmsetup as dmsetup_cases
from tests.parsers import test_drbd9 as drbd9_cases
from tests.parsers import test_events2 as events2_cases
from tests.parsers import test_lvm as lvm_cases
from tests.parsers import test_procdrbd as procdrbd_cases
from tests.parsers import test_xl as xl_cases

PROFILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters the real outputs are made of, so that random text often gets past the first check.
ALPHABET = st.sampled_from([*"0123456789abcdefLIrwsbpcd-_:/.,{}[]\"' \t\n=()%>KMG", "\x00", "é", "²"])
TEXTS = st.one_of(st.text(max_size=300), st.text(alphabet=ALPHABET, max_size=300))


@st.composite
def mutated(draw: st.DrawFn, samples: list[str]) -> str:
    """A sample with a few random edits: deleted, inserted or replaced characters, cut or repeated lines."""
    text = draw(st.sampled_from(samples))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "dup_line", "drop_line"]))
        position = draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))
        if op == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 20)):]
        elif op == "insert":
            text = text[:position] + draw(st.text(alphabet=ALPHABET, min_size=1, max_size=10)) + text[position:]
        elif op == "replace":
            text = text[:position] + draw(ALPHABET) + text[position + 1:]
        elif op == "truncate":
            text = text[:position]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
                lines[index:index + 1] = [lines[index]] * (2 if op == "dup_line" else 0)
                text = "".join(lines)
    return text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@st.composite
def json_mutated(draw: st.DrawFn, samples: list[str]) -> str:
    """A JSON sample with one value, anywhere in the tree, replaced by a random JSON value or removed."""
    data: Any = json.loads(draw(st.sampled_from(samples)))
    node = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        if isinstance(node, dict) and draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(JSON_VALUES)
        break
    return json.dumps(data)


def only_parse_errors(call: Callable[[], object]) -> None:
    try:
        call()
    except ParseError as exc:
        error = exc
    else:
        return
    assert error.tool
    assert str(error).startswith(f"cannot parse {error.tool} output")


# The segment sample carries a trailing comma (tolerated by the parser); json.loads in the mutator is stricter.
LVS_SAMPLES = [
    lvm_cases.LVS_TWO_LVS,
    lvm_cases.LVS_JSON_STD_WITH_LOG,
    lvm_cases.LVS_SEGMENTS.replace("},\n]}", "}\n]}"),
]
VGS_SAMPLES = [lvm_cases.VGS_TEXT]
PVS_SAMPLES = [lvm_cases.PVS_TEXT]


@PROFILE
@given(st.one_of(TEXTS, mutated([*LVS_SAMPLES, *VGS_SAMPLES, *PVS_SAMPLES])))
def test_lvm_text(text: str) -> None:
    for parse in (lvm.parse_lvs, lvm.parse_vgs, lvm.parse_pvs, lvm.parse_lvm_version):
        only_parse_errors(lambda parse=parse: parse(text))  # type: ignore[misc]


@PROFILE
@given(st.one_of(json_mutated(LVS_SAMPLES), json_mutated(VGS_SAMPLES), json_mutated(PVS_SAMPLES)))
def test_lvm_json_values(text: str) -> None:
    for parse in (lvm.parse_lvs, lvm.parse_vgs, lvm.parse_pvs):
        only_parse_errors(lambda parse=parse: parse(text))  # type: ignore[misc]


@PROFILE
@given(st.one_of(TEXTS, mutated([dmsetup_cases.TABLE_ALL, dmsetup_cases.INFO_ALL])))
def test_dmsetup(text: str) -> None:
    only_parse_errors(lambda: dmsetup.parse_table(text))
    only_parse_errors(lambda: dmsetup.parse_single_table(text))

    def info_and_merge() -> None:
        devices = dmsetup.merge(dmsetup.parse_info(text), dmsetup.parse_table(dmsetup_cases.TABLE_ALL))
        assert len({d.name for d in devices}) == len(devices)

    only_parse_errors(info_and_merge)
    # Normalising never fails and is idempotent.
    once = dmsetup.normalise_table(text, {"253:0": "/dev/vg/a"})
    assert dmsetup.normalise_table(once, {"253:0": "/dev/vg/a"}) == once


BLKID_SAMPLES = [
    "DEVNAME=/dev/sdb\nUUID=0ec9-47ef\nBLOCK_SIZE=512\nTYPE=xfs\n",
    "DEVNAME=/dev/sdb\nPTUUID=1234\nPTTYPE=gpt\n",
    "ID_FS_TYPE=drbd\nID_FS_USAGE=raid\n",
]


@PROFILE
@given(st.one_of(TEXTS, mutated(BLKID_SAMPLES)), st.sampled_from([0, 1, 2, 4, 8]))
def test_blkid(text: str, code: int) -> None:
    def parse() -> None:
        signature = blkid.parse_blkid_export(text, "/dev/sdb", code)
        # A successful probe that printed something is never mistaken for a blank device.
        if code == 0:
            assert signature.type is not None

    only_parse_errors(parse)


XL_LONG_SAMPLES = [json.dumps([xl_cases._entry(3, "vm100"), xl_cases._entry(4, "vm101", disks=[])])]
XL_SXP_SAMPLES = [xl_cases.XL_LIST_LONG_SXP]


@PROFILE
@given(
    st.one_of(
        TEXTS,
        mutated([xl_cases.XL_LIST, xl_cases.XL_INFO, *XL_LONG_SAMPLES, *XL_SXP_SAMPLES]),
        json_mutated(XL_LONG_SAMPLES),
    )
)
def test_xl(text: str) -> None:
    only_parse_errors(lambda: xl.parse_xl_info(text))
    only_parse_errors(lambda: xl.parse_xl_list_long(text))

    def list_and_merge() -> None:
        rows = xl.parse_xl_list(text)
        domains = xl.merge_domains(rows, xl.parse_xl_list_long(XL_LONG_SAMPLES[0]))
        assert all(d.domid != 0 for d in domains)

    only_parse_errors(list_and_merge)


@PROFILE
@given(st.one_of(TEXTS, mutated([drbd9_cases.SYNCING]), json_mutated([drbd9_cases.SYNCING])))
def test_drbd9(text: str) -> None:
    def parse() -> None:
        for resource in drbd9.parse_status_json(text):
            for connection in resource.connections:
                for peer in connection.peer_devices:
                    assert peer.resync_percent is None or 0 <= peer.resync_percent <= 100

    only_parse_errors(parse)


@PROFILE
@given(
    st.one_of(
        TEXTS, mutated([events2_cases.NOW_STATISTICS, events2_cases.NOW_STATISTICS.replace("exists", "change")])
    )
)
def test_events2(text: str) -> None:
    def fold() -> None:
        state = DrbdState()
        for line in text.splitlines():
            event = events2.parse_event_line(line)
            if event is not None:
                state = events2.apply_event(state, event)
        assert len({r.name for r in state.resources}) == len(state.resources)

    only_parse_errors(fold)


@PROFILE
@given(
    st.one_of(TEXTS, mutated([procdrbd_cases.PROC_84, procdrbd_cases.PROC_80, procdrbd_cases.PROC_9])),
    st.dictionaries(st.integers(0, 10), st.sampled_from(["vm1", "vm2"]), max_size=4),
)
def test_procdrbd(text: str, mapping: dict[int, str]) -> None:
    only_parse_errors(lambda: procdrbd.parse_version(text))

    def parse_and_map() -> None:
        proc = procdrbd.parse_proc_drbd(text)
        state = procdrbd.to_drbd_state(proc, mapping)
        assert sum(len(r.devices) for r in state.resources) == sum(m.configured for m in proc.minors)

    only_parse_errors(parse_and_map)
