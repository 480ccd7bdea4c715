"""Load a desired-state directory: ``cluster.yaml`` plus ``vms/**/*.yaml``, validated as a whole.

Every problem in every file is collected before anything is rejected, so one run of ``reconciler
validate`` shows the operator all there is to fix.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from reconciler.desired.errors import Issue, ValidationFailed
from reconciler.desired.partial import Remainder, validate_remainder
from reconciler.desired.resolve import Vm, resolve_vm
from reconciler.desired.safefs import CLUSTER_FILE, DesiredFiles, UnsafePath, read_desired
from reconciler.desired.schema import ClusterFile, VmFile
from reconciler.desired.schema_issues import validate_document
from reconciler.desired.validate import check_cluster, check_fleet, check_vm, check_vm_file
from reconciler.desired.yamlload import MAX_NODES, Document, NodeBudget, parse

# All files of one load together: ten times what the 10,000-VM benchmark fleet expands to.
MAX_TOTAL_NODES = 5_000_000


@dataclass(frozen=True, slots=True)
class Cluster:
    """A validated desired state: the cluster file and every VM with its defaults applied."""

    root: str
    spec: ClusterFile
    vms: tuple[Vm, ...]

    @property
    def name(self) -> str:
        return self.spec.cluster

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self.spec.nodes)


@dataclass(frozen=True, slots=True)
class _ParsedVm:
    text: str
    doc: Document | None
    spec: VmFile | None
    issues: tuple[Issue, ...]
    size: int
    reusable: bool  # False when the load's shared value budget, not the text alone, decided the outcome
    # Set when the schema rejected some values: the rest of the file, checked for its other problems.
    remainder: Remainder[VmFile] | None = None


# What each VM file gave at the last load: the daemon loads every new revision, and most files are
# unchanged between two of them. A file's own checks depend on its text alone, so an entry is reused only
# for the very same text; entries of files that are gone are dropped at the end of each load.
_LAST_LOAD: dict[str, _ParsedVm] = {}


def _parse_vm(rel: str, text: str, budget: NodeBudget) -> _ParsedVm:
    cached = _LAST_LOAD.get(rel)
    if cached is not None and cached.reusable and cached.text == text and cached.size <= budget.remaining:
        budget.remaining -= cached.size
        return cached
    before = budget.remaining
    doc, found = parse(rel, text, budget)
    spec: VmFile | None = None
    remainder: Remainder[VmFile] | None = None
    if doc is not None:
        spec, schema_issues = validate_document(VmFile, doc)
        found += schema_issues
        if spec is not None:
            found += check_vm_file(spec, doc)
        elif schema_issues:
            remainder = validate_remainder(VmFile, doc)
            if remainder is not None:
                found += remainder.keep(check_vm_file(remainder.spec, remainder.document))
    return _ParsedVm(text, doc, spec, tuple(found), before - budget.remaining,
                     reusable=doc is not None or before >= MAX_NODES, remainder=remainder)


def collect(directory: str, files: DesiredFiles | None = None) -> tuple[Cluster | None, list[Issue]]:
    """Load and validate ``directory`` (or ``files``, read from it already); the cluster comes back only when
    there is no issue at all."""
    # Loading builds hundreds of thousands of small acyclic objects; the cyclic collector would rescan
    # all of them again and again (a quarter of the load time for a large fleet) and find nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _collect(directory, files)
    finally:
        if was_enabled:
            gc.enable()


def _collect(directory: str, files: DesiredFiles | None) -> tuple[Cluster | None, list[Issue]]:
    if files is None:
        try:
            files = read_desired(directory)
        except UnsafePath as exc:
            return None, [exc.issue]
        except OSError as exc:
            return None, [Issue(directory, 1, 1, f"cannot open the directory: {exc.strerror}",
                                "give the desired-state directory (the one holding cluster.yaml)")]
    issues: list[Issue] = list(files.issues)
    budget = NodeBudget(MAX_TOTAL_NODES)
    docs: dict[str, Document] = {}
    cluster: ClusterFile | None = None
    if not files.cluster_present:
        issues.append(Issue(CLUSTER_FILE, 1, 1, "the cluster file is missing",
                            f"create {CLUSTER_FILE} with the cluster name and its nodes"))
    elif files.cluster is not None:
        doc, found = parse(CLUSTER_FILE, files.cluster, budget)
        issues.extend(found)
        if doc is not None:
            docs[CLUSTER_FILE] = doc
            cluster, found = validate_document(ClusterFile, doc)
            issues.extend(found)
            if cluster is not None:
                issues.extend(check_cluster(cluster, doc))

    specs: list[tuple[VmFile, Document, Remainder[VmFile] | None]] = []
    parsed: dict[str, _ParsedVm] = {}
    for rel, text in files.vms:
        entry = parsed[rel] = _parse_vm(rel, text, budget)
        issues.extend(entry.issues)
        if entry.doc is not None:
            docs[rel] = entry.doc
            if entry.spec is not None:
                specs.append((entry.spec, entry.doc, None))
            elif entry.remainder is not None:
                specs.append((entry.remainder.spec, entry.remainder.document, entry.remainder))
    _LAST_LOAD.clear()
    _LAST_LOAD.update(parsed)

    if cluster is None:
        return None, _report(issues)
    vms: list[Vm] = []
    remainders = [r for _, _, r in specs if r is not None]
    for spec, doc, remainder in specs:
        vm, found = resolve_vm(spec, doc.path, cluster, doc)
        own = check_vm(vm, cluster, docs) if vm is not None else []
        issues.extend(remainder.keep([*found, *own]) if remainder is not None else [*found, *own])
        if vm is not None:
            vms.append(vm)
    fleet = check_fleet(vms, cluster, docs)
    for remainder in remainders:
        fleet = remainder.keep(fleet)
    issues.extend(fleet)
    if issues:
        return None, _report(issues)
    return Cluster(directory, cluster, tuple(vms)), []


def _report(issues: list[Issue]) -> list[Issue]:
    # A bad default is inherited by every VM; say it once, not once per VM.
    return sorted(set(issues), key=Issue.sort_key)


def load_cluster(directory: str, files: DesiredFiles | None = None) -> Cluster:
    """The validated desired state in ``directory`` (or ``files``, read from it already); raises
    :class:`ValidationFailed` with every issue."""
    cluster, issues = collect(directory, files)
    if cluster is None:
        raise ValidationFailed(issues)
    return cluster
