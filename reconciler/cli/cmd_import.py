"""`reconciler import --node NAME [--out DIR]`: write the desired state that reproduces a node built by hand.

Run it on each node with the same ``--out`` directory: each run stores what it read under ``DIR/import/``
and rewrites the repository from every node read so far, listing where the nodes disagree. Read-only on
the node.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from reconciler.cli.common import add_host_options, make_host, make_observer
from reconciler.names import UnsafeNameError, check_name

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers

FACTS_DIR = "import"
REPORT = "import/REPORT.txt"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="write the desired state that reproduces a node built by hand (read-only on the node)",
        description="Read the node (observation, `drbdadm dump all`, /etc/xen) and write cluster.yaml and vms/*.yaml "
                    "to --out; run it on each node with the same --out to merge them. Whatever the desired state "
                    "cannot express is listed with its file and line in DIR/import/REPORT.txt.",
    )
    add_host_options(parser)
    parser.add_argument("--out", metavar="DIR", default="imported", help="the directory to write (default: imported)")
    parser.add_argument("--cluster", default="imported", help="the cluster's name in cluster.yaml")
    parser.set_defaults(func=_run)


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _run(args: argparse.Namespace) -> int:
    from reconciler.desired.load import collect  # noqa: PLC0415
    from reconciler.desired.safefs import VMS_DIR  # noqa: PLC0415
    from reconciler.importer.facts import NodeFacts  # noqa: PLC0415
    from reconciler.importer.merge import merge  # noqa: PLC0415
    from reconciler.importer.read_node import read_node  # noqa: PLC0415

    try:
        cluster = check_name(args.cluster, "cluster")
        host = make_host(args)
    except UnsafeNameError as exc:
        print(f"import: {exc}", file=sys.stderr)
        return 2
    observed = make_observer(args, host).observe()
    facts = read_node(host, observed)
    out = args.out
    facts_dir = os.path.join(out, FACTS_DIR)
    try:
        _write(os.path.join(facts_dir, f"{check_name(facts.node, 'node')}.json"), facts.to_json())
        nodes = []
        for name in sorted(os.listdir(facts_dir)):
            if name.endswith(".json"):
                path = os.path.join(facts_dir, name)
                with open(path, encoding="utf-8") as handle:
                    try:
                        nodes.append(NodeFacts.from_json(handle.read()))
                    except (ValueError, TypeError, KeyError) as exc:
                        print(f"import: {path} cannot be read ({exc}); remove it and import that node again",
                              file=sys.stderr)
                        return 1
        merged = merge(nodes, cluster)
        vms_dir = os.path.join(out, VMS_DIR)
        if os.path.isdir(vms_dir):
            for name in os.listdir(vms_dir):
                if name.endswith(".yaml") and f"{VMS_DIR}/{name}" not in merged.files:
                    os.remove(os.path.join(vms_dir, name))
        for rel, text in sorted(merged.files.items()):
            _write(os.path.join(out, rel), text)
        report = [f"Imported from: {', '.join(n.node for n in nodes)}", "",
                  f"Disagreements between the nodes ({len(merged.disagreements)}):",
                  *(f"  {d}" for d in merged.disagreements), "",
                  f"Not expressed, old definitions, cluster managers, services ({len(merged.findings)}):",
                  *(f"  {f.format()}" for f in merged.findings), ""]
        _write(os.path.join(out, REPORT), "\n".join(report))
    except OSError as exc:
        print(f"import: cannot write {exc.filename or out}: {exc.strerror or exc}; give --out a directory you can "
              "write to", file=sys.stderr)
        return 1
    print("\n".join(report))
    for rel in sorted(merged.files):
        print(os.path.join(out, rel))
    loaded, issues = collect(out)
    if loaded is None:
        for issue in issues:
            print(issue.format(out), file=sys.stderr)
        print(f"import: the written directory does not validate yet ({len(issues)} problem(s)); see above",
              file=sys.stderr)
        return 1
    return 0
