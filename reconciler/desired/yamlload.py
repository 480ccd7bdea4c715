"""YAML to plain values, with every value traceable to its line and column when a problem is reported.

PyYAML's libyaml-backed composer is used because it is several times faster than a round-trip loader and
its nodes carry start marks. Values are built from the nodes here rather than by PyYAML's constructor, so
duplicate keys are caught (PyYAML silently keeps the last one) and keys stay the text the operator wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from reconciler.desired.errors import Issue

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_PLAIN_TAGS = {_STR, _INT, _BOOL, _NULL, _FLOAT, _SEQ, _MAP}
# The other types of the YAML 1.1 type repository; anything else (!!python/..., !custom) is refused.
_STANDARD_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("timestamp", "binary", "omap", "pairs", "set", "merge",
                                                              "value")}

KeyPath = tuple[str | int, ...]
# A file's plain value as this loader builds it: mappings have text keys, scalars are text, numbers, booleans or null.
YamlValue: TypeAlias = "dict[str, YamlValue] | list[YamlValue] | str | int | float | bool | None"

# Bounds of one file's structure. Aliases share nodes, so composing is linear in the text; building plain
# values expands every alias, and a few KB of nested aliases ("billion laughs") would expand to billions of
# values. A VM file has a few dozen nodes and a cluster file of a thousand nodes some ten thousand, so these
# limits leave room while keeping one file's worth of values to a few megabytes.
MAX_DEPTH = 32
MAX_NODES = 50_000
_MAX_NUMBER_TEXT = 64

# Most plain scalars repeat across files (volume group names, "present", sizes); resolving each distinct
# text once instead of running the resolver's regular expressions on every occurrence halves load time.
_RESOLVED: dict[str, str] = {}
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


def _resolve_plain(value: str) -> str:
    tag = _RESOLVED.get(value)
    if tag is None:
        tag = str(_RESOLVER.resolve(ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]
        if len(_RESOLVED) < 100_000:
            _RESOLVED[value] = tag
    return tag


# A PyYAML built without libyaml has no CSafeLoader; the pure-Python one gives the same nodes, only slower.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """libyaml composer with a memoised resolver; the safe loader has no path resolvers to maintain."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR
            return _RESOLVED.get(value) or _resolve_plain(value)
        return _SEQ if kind is SequenceNode else _MAP


class Document:
    """One parsed file: its plain value, and its text for locating values when a problem is reported.

    The node tree is dropped after parsing and composed again only when a position is asked for: a valid
    fleet never needs one, and keeping every tree alive costs hundreds of megabytes and slows the garbage
    collector down for every file that follows.
    """

    __slots__ = ("_root", "path", "text", "value")

    def __init__(self, path: str, text: str, value: YamlValue, root: Node | None = None) -> None:
        self.path = path
        self.text = text
        self.value = value
        self._root = root

    @property
    def root(self) -> Node | None:
        if self._root is None:
            self._root = _compose(self.text)
        return self._root

    def node_at(self, keypath: KeyPath) -> tuple[Node | None, Node | None]:
        """The deepest (key node, value node) pair along ``keypath`` that exists in the file."""
        key_node: Node | None = None
        node = self.root
        for step in keypath:
            if isinstance(node, MappingNode):
                for k, v in node.value:
                    if isinstance(k, ScalarNode) and k.value == str(step):
                        key_node, node = k, v
                        break
                else:
                    return key_node, node
            elif isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                key_node, node = None, node.value[step]
            else:
                return key_node, node
        return key_node, node

    def position(self, keypath: KeyPath, *, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``keypath`` (or of its key), or of its deepest ancestor."""
        key_node, node = self.node_at(keypath)
        if at_key and not keypath:
            return 1, 1
        target = key_node if at_key and key_node is not None else node
        if target is None:
            return 1, 1
        return target.start_mark.line + 1, target.start_mark.column + 1

    def issue(self, keypath: KeyPath, message: str, hint: str = "", *, at_key: bool = False) -> Issue:
        line, col = self.position(keypath, at_key=at_key)
        return Issue(self.path, line, col, message, hint)

    def has(self, keypath: KeyPath) -> bool:
        value = self.value
        for step in keypath:
            found, value = child(value, step)
            if not found:
                return False
        return True


def child(value: YamlValue, step: str | int) -> tuple[bool, YamlValue]:
    """Whether ``value`` holds ``step`` (a key of a mapping, an index of a list), and the value there.

    Keys are always text: a number step never names a key."""
    if isinstance(value, dict):
        return (True, value[step]) if isinstance(step, str) and step in value else (False, None)
    if isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
        return True, value[step]
    return False, None


class NodeBudget:
    """How many values (aliases expanded) all the files of one load may still build together."""

    __slots__ = ("remaining",)

    def __init__(self, total: int) -> None:
        self.remaining = total


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def check_shape(path: str, root: Node, limit: int = MAX_NODES) -> tuple[int, Issue | None]:
    """The number of values ``root`` expands to, or the issue that makes it unsafe to expand: nesting deeper
    than :data:`MAX_DEPTH`, an alias inside its own anchor (a cycle), or more than ``limit`` values.

    Iterative and memoised per node, so a shared (aliased) node is measured once: the cost is linear in the
    composed text whatever the aliases would expand to.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            kids = _children(node)
            size = 1 + sum(sizes[id(k)] for k in kids)
            depth = 1 + max((depths[id(k)] for k in kids), default=0)
            open_nodes.discard(key)
            if depth > MAX_DEPTH:
                return size, _mark_issue(path, node, f"nesting deeper than {MAX_DEPTH} levels",
                                         "the desired state needs a handful of levels; flatten the structure")
            if size > limit:
                return size, _mark_issue(
                    path, node, f"expands to more than {limit} values (aliases included)",
                    "write the values out instead of nesting aliases; a VM file needs a few dozen values")
            sizes[key], depths[key] = size, depth
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            return 0, _mark_issue(path, node, "an alias refers to a node that contains it (a recursive structure)",
                                  "remove the alias; the desired state is a tree of plain values")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)], None


def _mark_issue(path: str, node: Node, message: str, hint: str) -> Issue:
    return Issue(path, node.start_mark.line + 1, node.start_mark.column + 1, message, hint)


def _scalar(path: str, node: ScalarNode, issues: list[Issue]) -> YamlValue:
    tag = node.tag
    text: str = node.value
    if tag == _STR:
        return text
    if tag == _INT:
        if len(text) > _MAX_NUMBER_TEXT:
            # Python refuses to convert more than 4300 digits (and converting is quadratic below that).
            issues.append(_mark_issue(path, node, f"a number written with {len(text)} characters",
                                      "no setting needs more than 20 digits"))
            return text
        return int(text) if text.isdigit() else _CONSTRUCTOR.construct_yaml_int(node)
    if tag == _BOOL:
        return _CONSTRUCTOR.construct_yaml_bool(node)
    if tag == _NULL:
        return None
    if tag == _FLOAT:
        return _CONSTRUCTOR.construct_yaml_float(node)
    if tag in _PLAIN_TAGS or tag in _STANDARD_TAGS:
        # Timestamps, binary and the like mean nothing here; the schema reports the text as what it is.
        return text
    issues.append(_mark_issue(path, node, f"unsupported YAML tag {tag!r}", "remove the tag; plain values only"))
    return text


def _to_value(path: str, node: Node, issues: list[Issue]) -> YamlValue:
    # Hot path of every load: plain strings, the most common leaves, are taken inline without a call.
    kind = node.__class__
    if kind is ScalarNode:
        return node.value if node.tag == _STR else _scalar(path, node, issues)  # type: ignore[arg-type]
    if kind is not ScalarNode and node.tag not in (_SEQ, _MAP):
        issues.append(_mark_issue(path, node, f"unsupported YAML tag {node.tag!r}",
                                  "remove the tag; plain values only"))
    if kind is SequenceNode:
        return [
            item.value if item.__class__ is ScalarNode and item.tag == _STR else _to_value(path, item, issues)
            for item in node.value
        ]
    if kind is MappingNode:
        result: dict[str, YamlValue] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                issues.append(_mark_issue(path, key_node, "a key must be plain text", "write key: value"))
                continue
            key = key_node.value
            if key in result:
                issues.append(_duplicate(path, node, key_node))
            elif value_node.__class__ is ScalarNode and value_node.tag == _STR:
                result[key] = value_node.value
            else:
                result[key] = _to_value(path, value_node, issues)
        return result
    return None


def _duplicate(path: str, mapping: Node, key_node: ScalarNode) -> Issue:
    first = _first_key(mapping, key_node.value)
    return _mark_issue(
        path, key_node, f"duplicate key {key_node.value!r} (first at line {first})",
        "remove one of them; YAML would silently keep only the last",
    )


def _first_key(mapping: Node, key: str) -> int:
    for k, _ in mapping.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return int(k.start_mark.line) + 1
    return 0


def _compose(text: str) -> Node | None:
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def parse(path: str, text: str, budget: NodeBudget | None = None) -> tuple[Document | None, list[Issue]]:
    """Parse ``text`` (the content of ``path``). A document comes back whenever the YAML could be read, even
    with issues such as duplicate keys, so that the schema can still report everything else in the file.
    ``budget`` bounds the values built across all files of one load."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or "cannot parse"
        if "another document" in problem:
            return None, [Issue(path, line, col, "a second YAML document in one file",
                                "one file holds one VM (or the cluster): remove the '---' or split the file")]
        context = f" ({exc.context})" if exc.context else ""
        hint = f"check indentation, colons, brackets and quotes around here{context}"
        return None, [Issue(path, line, col, f"YAML syntax error: {problem}", hint)]
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return None, [Issue(path, line, col, f"a character YAML does not allow: U+{ord(char):04X}",
                            "remove control characters; save the file as plain UTF-8 text")]
    except yaml.YAMLError as exc:
        return None, [Issue(path, 1, 1, f"YAML error: {exc}", "check the file's encoding and syntax")]
    except RecursionError:
        # Only the pure-Python composer recurses; libyaml stops at 1000 levels with a syntax error itself.
        return None, [Issue(path, 1, 1, "nesting too deep to read", f"use at most {MAX_DEPTH} levels")]
    finally:
        loader.dispose()
    if root is None:
        return None, [Issue(path, 1, 1, "the file is empty", "write the settings as a YAML mapping")]
    limit = MAX_NODES if budget is None else min(MAX_NODES, budget.remaining)
    size, unsafe = check_shape(path, root, limit)
    if unsafe is not None:
        if budget is not None and limit < MAX_NODES and size > limit and "expands to" in unsafe.message:
            unsafe = Issue(path, unsafe.line, unsafe.col,
                           "the desired state as a whole expands to too many values (aliases included)",
                           "write the values out instead of nesting aliases")
        return None, [unsafe]
    if budget is not None:
        budget.remaining -= size
    issues: list[Issue] = []
    value = _to_value(path, root, issues)
    return Document(path, text, value, root if issues else None), issues


def keypath_str(keypath: Sequence[str | int]) -> str:
    parts: list[str] = []
    for step in keypath:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append(("." if parts else "") + step)
    return "".join(parts)
