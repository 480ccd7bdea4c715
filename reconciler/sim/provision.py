"""Simulated provisioning: ``xfs_admin -L``, ``unshare`` and ``reconciler helper``.

- ``xfs_admin -L LABEL DEVICE`` changes the label of the XFS signature, as xfsprogs 6.1.0 prints it
  (``tests/sim/fixtures/xfs_admin-*``); it refuses a mounted filesystem, and a DRBD Secondary's device.
- ``unshare`` checks its options and runs the rest of its argv with a mark of the namespaces it made; the
  helper's mount then exists only inside that one command (it never appears in ``/proc/mounts``).
- ``reconciler helper`` does what ``reconciler.daemon.node.provision_run`` does, against the simulated
  node: its config is the node's ``/etc/reconciler/provisioning.toml`` (parsed by the real parser), an image
  is a file of the node under an image root, a provisioner's program is a file of the node. What fills the
  filesystem is recorded in the XFS signature (``tree``: source and digest) of the device's content record,
  so DRBD replicates it as it replicates the label. A provisioner program whose file starts with
  ``#!sim fail N`` exits N with the rest of the file as its output after writing a part of the tree;
  ``#!sim hang`` never finishes, and the helper's own deadline kills it (charged to simulated time).
- ``reconciler helper unused`` answers as the exclusive open does: busy while anything holds the device.
"""

from __future__ import annotations

import hashlib
from typing import Any

from reconciler.daemon.node.provision_config import CONFIG_PATH, ProvisionConfigError, load_config
from reconciler.host.base import CommandResult
from reconciler.names import UnsafeNameError, check_absolute_path
from reconciler.sim.blockdev import visible_signatures
from reconciler.sim.commands import CommandContext, command, dispatch
from reconciler.sim.roles import drbd_role
from reconciler.sim.state import advance_state, content, open_count

XFS_FATAL = "\nfatal error -- couldn't initialize XFS library\n"
MAX_LABEL = 12
HELPER = "reconciler helper"


def _xfs(ctx: CommandContext, path: str) -> dict[str, Any] | None:
    key = ctx.resolve_device(path)
    if key is None:
        return None
    signature = content(ctx.state, key).get("signature")
    return signature if isinstance(signature, dict) and signature.get("type") == "xfs" else None


def _set_signature(ctx: CommandContext, path: str, signature: dict[str, Any]) -> None:
    key = ctx.resolve_device(path)
    if key is not None:
        content(ctx.state, key)["signature"] = signature


def _mounted(ctx: CommandContext, path: str) -> bool:
    key = ctx.resolve_device(path)
    return any(m["device"] == path or (key is not None and ctx.resolve_device(m["device"]) == key)
               for m in ctx.node_state.get("mounts", []))


@command("xfs_admin")
def xfs_admin(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] == ["-V"]:
        return ctx.ok("xfs_admin version 6.1.0\n")
    if len(argv) != 4 or argv[1] != "-L":
        return ctx.fail(1, "xfs_admin: the simulator knows only `xfs_admin -L LABEL DEVICE`\n")
    label, path = argv[2], argv[3]
    if not ctx.device_exists(path):
        return ctx.fail(1, f"{path}: No such file or directory\n{XFS_FATAL}")
    if _mounted(ctx, path):
        return ctx.fail(1, f"xfs_admin: {path} contains a mounted filesystem\n{XFS_FATAL}")
    role = drbd_role(ctx.state, ctx.node, path)
    if role is not None and role != "Primary":
        # DRBD refuses a Secondary's device to writers (this wording is not a captured one).
        return ctx.fail(1, f"{path}: Wrong medium type\n{XFS_FATAL}")
    signature = _xfs(ctx, path)
    if signature is None:
        return ctx.fail(1, f"xfs_admin: {path} is not a valid XFS filesystem (unexpected SB magic number "
                           "0x00000000)\nUse -F to force a read attempt.\n")
    warning = ""
    if len(label) > MAX_LABEL:
        warning = f"xfs_admin: truncating label length from {len(label)} to {MAX_LABEL}\n"
        label = label[:MAX_LABEL]
    _set_signature(ctx, path, {**signature, "label": label})
    return ctx.ok(f'writing all SBs\nnew label = "{label}"\n', warning)


_UNSHARE_FLAGS = {"--mount": "mount", "-m": "mount", "--pid": "pid", "-p": "pid", "--fork": "fork", "-f": "fork",
                  "--kill-child": "kill-child"}


@command("unshare")
def unshare(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] in (["-V"], ["--version"]):
        return ctx.ok("unshare from util-linux 2.38.1\n")
    made: set[str] = set()
    propagation = "private"  # util-linux's default for --mount
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if word == "--propagation" and i + 1 < len(argv):
            propagation = argv[i + 1]
            i += 2
            continue
        if word not in _UNSHARE_FLAGS:
            break
        made.add(_UNSHARE_FLAGS[word])
        i += 1
    inner = tuple(argv[i:])
    if not inner:
        return ctx.fail(1, "unshare: no command given\n")
    namespaces = {"mount": "mount" in made, "private": "mount" in made and propagation == "private",
                  "pid": "pid" in made and "fork" in made}
    sub = CommandContext(state=ctx.state, node=ctx.node, argv=inner, stdin=ctx.stdin, timeout=ctx.timeout,
                         notes={**ctx.notes, "namespaces": namespaces})
    done = dispatch(sub)
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr, done.duration_s, done.timed_out,
                         done.not_found)


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


@command("reconciler")
def reconciler(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if len(argv) >= 3 and argv[1] == "helper":
        step = argv[2]
        if step == "unused":
            return _unused(ctx, argv[3:])
        if step in ("provision-check", "provision-run"):
            return _provision(ctx, step, argv)
    return ctx.fail(2, "reconciler: the simulator runs only `reconciler helper ...` as a command\n")


def _unused(ctx: CommandContext, devices: list[str]) -> CommandResult:
    busy = []
    for device in devices:
        if not ctx.device_exists(device):
            busy.append(f"{device}: No such file or directory")
        elif open_count(ctx.state, ctx.node, device) > 0:
            busy.append(f"{device}: Device or resource busy (mounted in some mount namespace, or held by a device "
                        "or process)")
    if busy:
        return ctx.fail(1, "", "not unused: " + "; ".join(busy) + "\n")
    return ctx.ok(f"unused: {' '.join(devices)}\n")


def _source(ctx: CommandContext, argv: list[str]) -> tuple[str, str]:
    """(what, digest) of the provisioner or image the helper would use; ProvisionConfigError otherwise."""
    path = _option(argv, "--config") or CONFIG_PATH
    config = load_config(ctx.read_file(path), path)
    name = _option(argv, "--provisioner")
    if name is not None:
        program = config.provisioner(name).command[0]
        script = ctx.read_file(program)
        if script is None:
            raise ProvisionConfigError(f"{config.path}: provisioner {name}'s program {program} is not an executable "
                                       "file on this node")
        return f"provisioner {name}", hashlib.sha256(script.encode()).hexdigest()[:16]
    image = check_absolute_path(_option(argv, "--image") or "", "image")
    config.image_root(image)
    data = ctx.read_file(image)
    if data is None:
        raise ProvisionConfigError(f"image {image} does not exist on this node")
    return f"image {image}", hashlib.sha256(data.encode()).hexdigest()[:16]


def _provision(ctx: CommandContext, step: str, argv: list[str]) -> CommandResult:
    try:
        what, digest = _source(ctx, argv)
    except (ProvisionConfigError, UnsafeNameError) as exc:
        return ctx.fail(2, f"{HELPER} {step}: {exc}\n")
    if step == "provision-check":
        return ctx.ok(f"ok: {what}\n")
    namespaces = ctx.notes.get("namespaces") or {}
    if not (namespaces.get("private") and namespaces.get("pid")):
        return ctx.fail(1, f"{HELPER} {step}: refusing to mount: not the init of its own PID namespace in a private "
                           "mount namespace (run it through unshare --mount --propagation private --pid --fork)\n")
    device = _option(argv, "--device") or ""
    vm = _option(argv, "--vm") or ""
    timeout = float(_option(argv, "--timeout") or "0")
    unused = _unused(ctx, [device])
    if not unused.ok:
        return ctx.fail(1, f"{HELPER} {step}: {device} is in use; nothing was mounted\n", unused.stdout)
    if drbd_role(ctx.state, ctx.node, device) not in (None, "Primary") or not visible_signatures(ctx, device):
        return ctx.fail(1, f"{HELPER} {step}: mounting {device} failed: `mount -t xfs ...` (exit 32): mount(2) system "
                           "call failed: Wrong medium type.\n", unused.stdout)
    signature = _xfs(ctx, device)
    if signature is None:
        return ctx.fail(1, f"{HELPER} {step}: mounting {device} failed: wrong fs type\n", unused.stdout)
    said = unused.stdout
    if signature.get("tree"):
        return ctx.fail(1, f"{HELPER} {step}: the filesystem on {device} is not empty: provisioning fills only an "
                           "empty filesystem (an earlier attempt left these; see docs/desired-state.md)\n", said)
    said += f"provisioning {device} of {vm} from {what}\n"
    if what.startswith("provisioner "):
        program = _provisioner_program(ctx, argv)
        script = ctx.read_file(program) or ""
        if script.startswith("#!sim hang"):
            advance_state(ctx.state, timeout)
            _set_signature(ctx, device, {**signature, "tree": {"source": what, "digest": digest, "partial": True}})
            return ctx.fail(1, f"{HELPER} {step}: provisioner {what.split()[1]} failed: `{program} ...` (timed out)\n",
                            said)
        if script.startswith("#!sim fail"):
            first, _, rest = script.partition("\n")
            code = int(first.split()[2]) if len(first.split()) > 2 else 1
            _set_signature(ctx, device, {**signature, "tree": {"source": what, "digest": digest, "partial": True}})
            last = rest.strip().splitlines()[-1] if rest.strip() else ""
            return ctx.fail(1, f"{HELPER} {step}: provisioner {what.split()[1]} failed: `{program} ...` (exit {code}): "
                               f"{last}\n", said + rest)
        said += script if script and not script.startswith("#!") else ""
    _set_signature(ctx, device, {**signature, "tree": {"source": what, "digest": digest}})
    return ctx.ok(said + f"provisioned {device} of {vm}\n")


def _provisioner_program(ctx: CommandContext, argv: list[str]) -> str:
    path = _option(argv, "--config") or CONFIG_PATH
    config = load_config(ctx.read_file(path), path)
    return config.provisioner(_option(argv, "--provisioner") or "").command[0]
