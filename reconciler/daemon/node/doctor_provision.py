"""The doctor's provisioning checks: the node's config, and each provisioner and image it would use."""

from __future__ import annotations

from typing import Literal

from reconciler.core.provisioning import check_argv
from reconciler.daemon.node.provision_config import CONFIG_PATH, ProvisionConfigError, parse_config
from reconciler.host.base import Host, HostFileError
from reconciler.model.desired import DesiredNode

Verdict = Literal["ok", "warn", "fail", "skip"]
Found = tuple[str, Verdict, str]  # a check's name, verdict and detail (the doctor makes its Check of it)

CHECK_TIMEOUT = 30.0
TOOLS = (("xfs_admin", ("xfs_admin", "-V")), ("unshare", ("unshare", "--version")))


def check_provisioning(host: Host, desired: DesiredNode | None) -> list[Found]:
    """Each provisioner configured here and each provisioning a VM here names is checked by the very command the
    executor runs first (``reconciler helper provision-check``): program executable, image under a root."""
    wanted = [vm.provision for vm in (desired.vms if desired else ()) if vm.provision is not None]
    try:
        text = host.read_file(CONFIG_PATH)
    except HostFileError as exc:
        return [("provisioning", "fail", f"cannot read {CONFIG_PATH}: {exc}")]
    if text is None:
        if wanted:
            return [("provisioning", "fail", f"{', '.join(p.vm for p in wanted)} name a provisioning but "
                                                  f"{CONFIG_PATH} does not exist here (docs/operations.md)")]
        return [("provisioning", "skip", f"no {CONFIG_PATH} and no VM here names a provisioning")]
    try:
        config = parse_config(text, CONFIG_PATH)
    except ProvisionConfigError as exc:
        return [("provisioning", "fail", str(exc))]
    checks: list[Found] = [("provisioning config", "ok", f"{len(config.provisioners)} provisioners, image roots: "
                                                             f"{', '.join(config.image_roots) or 'none'}")]
    for tool, version in TOOLS if wanted else ():
        found = host.run(version, timeout=CHECK_TIMEOUT)
        checks.append((f"tool {tool}", "ok" if found.ok else "fail",
                       "installed" if found.ok else f"needed for provisioning: {found.describe()}"))
    asked: list[tuple[str, tuple[str, ...]]] = [(f"provisioner {name}", check_argv("doctor", name, None))
                                                for name in sorted(config.provisioners)]
    asked += [(f"provisioning of {p.vm}", check_argv(p.vm, p.provisioner, p.image)) for p in wanted]
    for name, argv in asked:
        result = host.run(argv, timeout=CHECK_TIMEOUT)
        checks.append((name, "ok", result.stdout.strip()) if result.ok else (name, "fail", result.describe()))
    return checks
