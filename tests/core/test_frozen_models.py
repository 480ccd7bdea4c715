"""The frozen value objects (reconciler.model.base): built by keyword, immutable, equal and hashable by value,
dumped as plain data and read back strictly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest

from reconciler.desired.expand import expand_node
from reconciler.desired.load import load_cluster
from reconciler.model.base import Frozen, FrozenModelError, ModelDataError, field
from reconciler.model.desired import DesiredFailover, DesiredNode
from reconciler.model.status import ActionRecord, NodeStatus, PassResult

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(60)


class Leaf(Frozen):
    name: str
    size: int = 0
    ratio: float = 1.0


class Tree(Frozen):
    kind: Literal["a", "b"]
    leaves: tuple[Leaf, ...] = ()
    parent: Leaf | None = None
    labels: dict[str, int] = field(default_factory=dict)


class Subtree(Tree):
    depth: int = 1


def test_built_by_keyword_with_defaults_and_a_fresh_factory_default() -> None:
    first, second = Tree(kind="a"), Tree(kind="b")
    assert first.leaves == ()
    assert first.parent is None
    assert first.labels == {}
    assert first.labels is not second.labels
    with pytest.raises(TypeError, match="missing field"):
        Leaf()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unknown field"):
        Leaf(name="x", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Leaf("x")  # type: ignore[misc]


def test_a_subclass_has_its_parents_fields_first() -> None:
    sub = Subtree(kind="a", depth=3)
    assert Subtree._fields == ("kind", "leaves", "parent", "labels", "depth")
    assert sub.model_dump() == {"kind": "a", "leaves": (), "parent": None, "labels": {}, "depth": 3}


def test_immutable_equal_and_hashable_by_value() -> None:
    leaf = Leaf(name="x", size=1)
    with pytest.raises(FrozenModelError):
        leaf.size = 2  # type: ignore[misc]
    with pytest.raises(FrozenModelError):
        del leaf.size  # type: ignore[misc]
    assert leaf == Leaf(name="x", size=1)
    assert leaf != Leaf(name="x", size=2)
    assert hash(leaf) == hash(Leaf(name="x", size=1))
    assert len({leaf, Leaf(name="x", size=1), Leaf(name="y")}) == 2
    assert repr(leaf) == "Leaf(name='x', size=1, ratio=1.0)"


def test_an_equal_looking_model_of_another_class_is_not_equal() -> None:
    class Other(Frozen):
        name: str
        size: int = 0
        ratio: float = 1.0

    assert Leaf(name="x") != Other(name="x")


def test_copy_replaces_fields_and_refuses_unknown_ones() -> None:
    leaf = Leaf(name="x")
    grown = leaf.model_copy(update={"size": 5})
    assert (leaf.size, grown.size, grown.name) == (0, 5, "x")
    assert leaf.model_copy() is leaf
    with pytest.raises(TypeError, match="unknown field"):
        leaf.model_copy(update={"colour": "red"})


def test_dump_keeps_tuples_in_python_mode_and_lists_in_json_mode() -> None:
    tree = Tree(kind="a", leaves=(Leaf(name="x"),), labels={"k": 1})
    assert tree.model_dump()["leaves"] == ({"name": "x", "size": 0, "ratio": 1.0},)
    assert tree.model_dump(mode="json")["leaves"] == [{"name": "x", "size": 0, "ratio": 1.0}]
    assert "leaves" not in tree.model_dump(exclude={"leaves"})
    assert json.loads(tree.model_dump_json()) == tree.model_dump(mode="json")
    assert Tree.model_validate_json(tree.model_dump_json(indent=2)) == tree


def test_json_has_null_for_a_float_that_is_not_finite() -> None:
    text = Tree(kind="a", leaves=(Leaf(name="x", ratio=float("nan")), Leaf(name="y", ratio=float("inf")))
                ).model_dump_json()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert [leaf["ratio"] for leaf in json.loads(text)["leaves"]] == [None, None]
    assert Tree(kind="a").model_dump(mode="python")["leaves"] == ()


def test_read_back_accepts_what_json_has() -> None:
    tree = Tree.model_validate({"kind": "b", "leaves": [{"name": "x", "ratio": 2}], "parent": None})
    assert tree == Tree(kind="b", leaves=(Leaf(name="x", ratio=2.0),))
    assert isinstance(tree.leaves, tuple)
    assert isinstance(tree.leaves[0].ratio, float)


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "c"}, r"Tree.kind: expected one of 'a', 'b', got 'c'"),
    ({}, r"Tree: missing field\(s\) kind"),
    ({"kind": "a", "colour": 1}, r"Tree: unknown field\(s\) colour"),
    ({"kind": "a", "leaves": [{"name": "x", "size": True}]}, r"Tree.leaves\[0\].size: expected an integer, got bool"),
    ({"kind": "a", "leaves": [{"name": "x", "size": "5"}]}, r"Tree.leaves\[0\].size: expected an integer, got str"),
    ({"kind": "a", "leaves": {"name": "x"}}, r"Tree.leaves: expected a list, got dict"),
    ({"kind": "a", "parent": 3}, r"Tree.parent: expected an object, got int"),
    ({"kind": "a", "labels": {"k": "v"}}, r"Tree.labels\['k'\]: expected an integer, got str"),
    ([], r"Tree: expected an object, got list"),
])
def test_read_back_is_strict_and_names_the_field(data: object, message: str) -> None:
    with pytest.raises(ModelDataError, match=message):
        Tree.model_validate(data)


def test_number_keys_come_back_from_json_names() -> None:
    class Minors(Frozen):
        names: dict[int, str]

    minors = Minors(names={0: "vm100", 7: "vm107"})
    assert Minors.model_validate_json(minors.model_dump_json()) == minors
    with pytest.raises(ModelDataError, match=r"Minors.names key: expected an integer, got 'x'"):
        Minors.model_validate({"names": {"x": "vm100"}})


def test_not_json_is_a_model_data_error() -> None:
    with pytest.raises(ModelDataError, match="not JSON"):
        Tree.model_validate_json("{")
    with pytest.raises(ValueError, match="not JSON"):  # callers catch ValueError
        Tree.model_validate_json(b"\xff")


def test_the_example_nodes_round_trip_through_json() -> None:
    cluster = load_cluster(str(ROOT / "desired-state"))
    for node in ("erdbeere", "himbeere"):
        desired = expand_node(cluster, node)
        assert DesiredNode.model_validate_json(desired.model_dump_json()) == desired
    assert DesiredFailover.model_validate({}) == DesiredFailover()


def test_a_status_round_trips() -> None:
    record = ActionRecord(kind="lv-create", key="lv:vg/x", vm="vm1", result="ok", argv=(("lvcreate", "-n", "x"),))
    status = NodeStatus(node="erdbeere", last_pass=PassResult(started_at=1, finished_at=2.5, revision=None,
                                                              outcome="converged", actions=(record,)))
    assert status.model_dump(mode="json")["last_pass"]["actions"][0]["argv"] == [["lvcreate", "-n", "x"]]
    assert NodeStatus.model_validate(json.loads(status.model_dump_json(indent=2))) == status
