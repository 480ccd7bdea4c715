"""`reconciler helper`: node-side steps the executor runs as commands (not meant to be typed).

- ``provision-check``: read the node's provisioning config and check the named provisioner or image is
  there; writes nothing.
- ``provision-run``: mount, check empty, fill and unmount a filesystem; run only under ``unshare --mount
  --propagation private --pid --fork --kill-child`` (it refuses to mount in a shared mount namespace).
- ``unused DEVICE...``: exit 0 only when every device opens exclusively (O_EXCL).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.cli.common import Subparsers

PROG = "reconciler helper"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "helper", help="node-side steps of a provisioning, run by the executor (not by hand)",
        description="Steps the reconciler runs as commands on the node: provision-check, provision-run (in a "
                    "private mount namespace) and unused (an exclusive open of block devices).")
    steps = parser.add_subparsers(dest="step", required=True)
    for name in ("provision-check", "provision-run"):
        step = steps.add_parser(name)
        step.add_argument("--vm", required=True)
        source = step.add_mutually_exclusive_group(required=True)
        source.add_argument("--provisioner")
        source.add_argument("--image")
        step.add_argument("--config", default=None, help="the node's provisioning config (default "
                                                         "/etc/reconciler/provisioning.toml)")
        if name == "provision-run":
            step.add_argument("--device", required=True)
            step.add_argument("--timeout", type=int, required=True)
    unused = steps.add_parser("unused")
    unused.add_argument("devices", nargs="+")
    parser.set_defaults(func=_helper)


def _helper(args: argparse.Namespace) -> int:
    from reconciler.daemon.node import provision_run  # noqa: PLC0415
    from reconciler.daemon.node.provision_config import (  # noqa: PLC0415
        CONFIG_PATH,
        ProvisionConfigError,
        load_config,
    )
    from reconciler.host.base import HostFileError  # noqa: PLC0415
    from reconciler.names import UnsafeNameError  # noqa: PLC0415

    if args.step == "unused":
        try:
            return provision_run.unused(tuple(args.devices))
        except UnsafeNameError as exc:
            print(f"{PROG} unused: {exc}", file=sys.stderr)
            return 2
    path = args.config or CONFIG_PATH
    try:
        config = load_config(provision_run.read_trusted_config(path), path)
        if args.step == "provision-check":
            print(f"ok: {provision_run.check_source(config, args.provisioner, args.image)}")
            return 0
        provision_run.provision(config, args.device, provisioner=args.provisioner, image=args.image, vm=args.vm,
                                timeout_s=float(args.timeout))
    except (ProvisionConfigError, UnsafeNameError, HostFileError) as exc:
        print(f"{PROG} {args.step}: {exc}", file=sys.stderr)
        return 2
    except provision_run.ProvisionError as exc:
        print(f"{PROG} {args.step}: {exc}", file=sys.stderr)
        return 1
    print(f"provisioned {args.device} of {args.vm}")
    return 0
