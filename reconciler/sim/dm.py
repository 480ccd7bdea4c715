"""Simulated ``dmsetup`` (device-mapper 1.02.185): create, reload, suspend, resume, remove, rename, table, info, ls.

Every active LV is a device-mapper device too, as on a real node: ``dmsetup table``/``info``/``ls``
list ``vg--sda-root100`` with uuid ``LVM-<vg uuid><lv uuid>`` beside the devices created with
``dmsetup create``. Those LV devices belong to lvm2: ``dmsetup`` here refuses to remove or reload them
(device busy) instead of deactivating the LV behind lvm's back.

Tables are checked as the kernel's targets check them: ``linear`` and ``striped`` legs must exist and
be large enough; ``striped`` needs a chunk size that is a power of two of at least 8 sectors, a length
divisible by the number of stripes and each stripe's length divisible by the chunk size (dm-stripe.c).
Tables print legs as ``major:minor``. A reload loads an inactive table that takes effect on resume.
"""

from __future__ import annotations

from typing import Any

from reconciler.host.base import CommandResult
from reconciler.sim.commands import CommandContext, command, virtual_dir
from reconciler.sim.options import OptionError, Parsed, scan
from reconciler.sim.state import (
    DM_MAJOR,
    NodeState,
    State,
    device_exists,
    device_number,
    device_size,
    mapper_name,
    open_count,
    open_counts,
    split_mapper_name,
)

SECTOR = 512
EXIT_FAILED = 1
KNOWN_TARGETS = frozenset({"linear", "striped", "error", "zero"})

_SPEC: dict[str, tuple[str, bool]] = {
    "-u": ("uuid", True), "--uuid": ("uuid", True), "--table": ("table", True), "-c": ("columns", False),
    "-C": ("columns", False), "--columns": ("columns", False), "-o": ("options", True), "--options": ("options", True),
    "--noheadings": ("noheadings", False), "--separator": ("separator", True), "-f": ("force", False),
    "--force": ("force", False), "-r": ("readonly", False), "--readonly": ("readonly", False),
    "--notable": ("notable", False), "--noudevsync": ("noudevsync", False), "--noudevrules": ("noudevrules", False),
    "-v": ("verbose", False), "--verbose": ("verbose", False), "-y": ("yes", False), "--yes": ("yes", False),
    "--retry": ("retry", False), "--deferred": ("deferred", False), "--target": ("target", True),
    "--showkeys": ("showkeys", False), "--noflush": ("noflush", False), "--nolockfs": ("nolockfs", False),
    "--addnodeoncreate": ("addnode", False), "--addnodeonresume": ("addnode", False), "--sort": ("sort", True),
    "-O": ("sort", True), "--nameprefixes": ("nameprefixes", False), "--setuuid": ("setuuid", True),
}


class DmError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED, stdout: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.stdout = stdout


def _ioctl_failed(op: str, name: str, uuid: str, reason: str) -> DmError:
    # libdm's "%s ioctl on %s %s... failed": name, then the uuid the task carries (only create has one),
    # hence the double blank after the name for reload/remove/suspend.
    return DmError(f"device-mapper: {op} ioctl on {name} {uuid} failed: {reason}\nCommand failed.\n")


# --- devices as the kernel sees them ----------------------------------------------------------


def lv_devices(ns: NodeState) -> dict[str, dict[str, Any]]:
    """The device-mapper view of every active LV: name -> {uuid, minor, table, owner}."""
    devices: dict[str, dict[str, Any]] = {}
    for vg_name, vg in ns["vgs"].items():
        for lv_name, lv in vg["lvs"].items():
            devices[mapper_name(vg_name, lv_name)] = _lv_device(vg_name, vg, lv_name, lv)
    return devices


def _lv_device(vg_name: str, vg: dict[str, Any], lv_name: str, lv: dict[str, Any]) -> dict[str, Any]:
    extent_sectors = int(vg["extent_size"]) // SECTOR
    pe_start_sectors = 2048
    table = []
    for seg in lv["segments"]:
        start = int(seg["start_le"]) * extent_sectors
        length = int(seg["extents"]) * extent_sectors
        legs = [{"device": _pv_number(pv_name), "offset": pe_start_sectors + int(pe) * extent_sectors}
                for pv_name, pe in seg["areas"]]
        if seg["type"] == "striped":
            table.append({"start": start, "length": length, "target": "striped",
                          "chunk": int(seg["stripe_size"]) // SECTOR, "legs": legs})
        else:
            table.append({"start": start, "length": length, "target": "linear", "legs": legs})
    uuid = "LVM-" + vg["uuid"].replace("-", "") + lv["uuid"].replace("-", "")
    return {"uuid": uuid, "minor": int(lv["minor"]), "table": table, "inactive": None, "suspended": False,
            "owner": "lvm", "path": f"/dev/{vg_name}/{lv_name}"}


def device_named(ns: NodeState, name: str) -> dict[str, Any] | None:
    """``all_devices(ns).get(name)`` without building every LV's device (a dm device wins over an LV)."""
    found: dict[str, Any] | None = ns["dm"].get(name)
    if found is not None:
        return found
    split = split_mapper_name(name)
    if split is None or mapper_name(*split) != name:
        return None
    vg = ns["vgs"].get(split[0])
    lv = vg["lvs"].get(split[1]) if vg is not None else None
    return None if vg is None or lv is None else _lv_device(split[0], vg, split[1], lv)


def _pv_number(pv_name: str) -> str:
    from reconciler.sim.state import pv_device_number  # noqa: PLC0415

    return pv_device_number(pv_name)


def uuid_holder(ns: NodeState, uuid: str) -> str | None:
    """The name of the device (dm device or LV, as :func:`all_devices` lists them) whose uuid is ``uuid``;
    found without building every LV's table (an LV's dm uuid is ``LVM-`` + its VG's and its own uuid)."""
    for dm_name, dev in ns["dm"].items():
        if dev.get("uuid") == uuid:
            return str(dm_name)
    if not uuid.startswith("LVM-"):
        return None
    for vg_name, vg in ns["vgs"].items():
        prefix = "LVM-" + vg["uuid"].replace("-", "")
        if not uuid.startswith(prefix):
            continue
        for lv_name, lv in vg["lvs"].items():
            name = mapper_name(vg_name, lv_name)
            if name not in ns["dm"] and prefix + lv["uuid"].replace("-", "") == uuid:
                return name
    return None


def all_devices(ns: NodeState) -> dict[str, dict[str, Any]]:
    devices = lv_devices(ns)
    devices.update(ns["dm"])
    return devices


def format_line(state: State, node: str, line: dict[str, Any]) -> str:
    target = line["target"]
    head = f"{line['start']} {line['length']} {target}"
    if target == "linear":
        leg = line["legs"][0]
        return f"{head} {_shown(state, node, str(leg['device']))} {leg['offset']}"
    if target == "striped":
        legs = " ".join(f"{_shown(state, node, str(leg['device']))} {leg['offset']}" for leg in line["legs"])
        return f"{head} {len(line['legs'])} {line['chunk']} {legs}"
    params = str(line.get("params", ""))
    return f"{head} {params}".rstrip() if params else head


def _shown(state: State, node: str, device: str) -> str:
    return device_number(state, node, device) or device


# --- table parsing and the kernel's checks ----------------------------------------------------


def parse_table(state: State, node: str, text: str, name: str) -> list[dict[str, Any]]:
    """Parse a table and check it like the kernel; raises ``ValueError`` with the errno text."""
    lines: list[dict[str, Any]] = []
    expected_start = 0
    for raw in text.splitlines():
        stripped = raw.split("#", 1)[0].strip()
        if not stripped:
            continue
        words = stripped.split()
        if len(words) < 3 or not words[0].isdigit() or not words[1].isdigit():
            raise ValueError("Invalid argument")
        start, length, target = int(words[0]), int(words[1]), words[2]
        if start != expected_start or length == 0:
            raise ValueError("Invalid argument")
        expected_start = start + length
        args = words[3:]
        if target == "linear":
            if len(args) != 2 or not args[1].isdigit():
                raise ValueError("Invalid argument")
            _check_leg(state, node, args[0], offset=int(args[1]), length=length, name=name)
            lines.append({"start": start, "length": length, "target": "linear",
                          "legs": [{"device": args[0], "offset": int(args[1])}]})
        elif target == "striped":
            lines.append(_parse_striped(state, node, start, length, args, name=name))
        elif target in ("error", "zero"):
            if args:
                raise ValueError("Invalid argument")
            lines.append({"start": start, "length": length, "target": target, "legs": []})
        else:
            raise ValueError("Invalid argument")
    if not lines:
        raise ValueError("Invalid argument")
    return lines


def _parse_striped(state: State, node: str, start: int, length: int, args: list[str],
                   *, name: str) -> dict[str, Any]:
    if len(args) < 2 or not args[0].isdigit() or not args[1].isdigit():
        raise ValueError("Invalid argument")
    stripes, chunk = int(args[0]), int(args[1])
    if stripes < 1 or chunk < 8 or chunk & (chunk - 1):
        raise ValueError("Invalid argument")
    if length % stripes or (length // stripes) % chunk:
        raise ValueError("Invalid argument")
    pairs = args[2:]
    if len(pairs) != 2 * stripes:
        raise ValueError("Invalid argument")
    legs = []
    for index in range(stripes):
        device, offset = pairs[2 * index], pairs[2 * index + 1]
        if not offset.isdigit():
            raise ValueError("Invalid argument")
        _check_leg(state, node, device, offset=int(offset), length=length // stripes, name=name)
        legs.append({"device": device, "offset": int(offset)})
    return {"start": start, "length": length, "target": "striped", "chunk": chunk, "legs": legs}


def _check_leg(state: State, node: str, device: str, *, offset: int, length: int, name: str) -> None:
    if device.startswith("/"):
        if not device_exists(state, node, device):
            raise ValueError("No such device or address")
        number = device_number(state, node, device)
    else:
        number = device
        from reconciler.sim.state import device_path_for_number  # noqa: PLC0415

        if device_path_for_number(state, node, device) is None and not _is_pv_number(state, node, device):
            raise ValueError("No such device or address")
    if number == _own_number(state, node, name):
        raise ValueError("Invalid argument")
    size = device_size(state, node, device) if device.startswith("/") else _size_of_number(state, node, device)
    if size is not None and (offset + length) * SECTOR > size:
        raise ValueError("Invalid argument")


def _is_pv_number(state: State, node: str, number: str) -> bool:
    from reconciler.sim.state import pv_device_number  # noqa: PLC0415

    ns = state["nodes"][node]
    return any(pv_device_number(pv["name"]) == number for vg in ns["vgs"].values() for pv in vg["pvs"])


def _size_of_number(state: State, node: str, number: str) -> int | None:
    from reconciler.sim.state import device_path_for_number, pv_device_number  # noqa: PLC0415

    path = device_path_for_number(state, node, number)
    if path is not None:
        return device_size(state, node, path)
    ns = state["nodes"][node]
    for vg in ns["vgs"].values():
        for pv in vg["pvs"]:
            if pv_device_number(pv["name"]) == number:
                return int(pv.get("dev_size", 0))
    return None


def _own_number(state: State, node: str, name: str) -> str | None:
    dev = state["nodes"][node]["dm"].get(name)
    return None if dev is None else f"{DM_MAJOR}:{dev['minor']}"


# --- commands ---------------------------------------------------------------------------------


def _next_minor(ns: NodeState) -> int:
    minor = int(ns.get("next_minor", 0))
    ns["next_minor"] = minor + 1
    return minor


def _table_text(ctx: CommandContext, parsed: Parsed, positional_index: int) -> str:
    inline = parsed.last("table")
    if inline is not None:
        return inline.replace(";", "\n")
    if len(parsed.positionals) > positional_index:
        path = parsed.positionals[positional_index]
        text = ctx.read_file(path)
        if text is None:
            raise DmError(f"Couldn't open '{path}' for reading\nCommand failed.\n")
        return text
    return ctx.stdin or ""


def _create(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    if not parsed.positionals:
        raise DmError("Please specify device.\n\nCommand failed.\n")
    name = parsed.positionals[0]
    uuid = parsed.last("uuid") or ""
    ns = ctx.node_state
    if device_named(ns, name) is not None or (uuid and uuid_holder(ns, uuid) is not None):
        raise _ioctl_failed("create", name, uuid, "Device or resource busy")
    if "/" in name or len(name) > 127 or not name:
        raise _ioctl_failed("create", name, uuid, "Invalid argument")
    minor = _next_minor(ns)
    if parsed.has("notable"):
        ns["dm"][name] = {"uuid": uuid, "minor": minor, "table": None, "inactive": None, "suspended": False,
                          "readonly": parsed.has("readonly")}
        return ctx.ok()
    try:
        table = parse_table(ctx.state, ctx.node, _table_text(ctx, parsed, 1), name)
    except ValueError as exc:
        # The kernel created the device (taking a minor), the table load failed and libdm removed it again.
        failure = _ioctl_failed("reload", name, "", str(exc))
        return ctx.fail(failure.code, failure.message)
    ns["dm"][name] = {"uuid": uuid, "minor": minor, "table": table, "inactive": None, "suspended": False,
                      "readonly": parsed.has("readonly")}
    return ctx.ok()


def _user_device(ctx: CommandContext, op: str, name: str) -> dict[str, Any]:
    ns = ctx.node_state
    dev: dict[str, Any] | None = ns["dm"].get(name)
    if dev is None:
        lv_dev = lv_devices(ns).get(name)
        if lv_dev is not None:
            raise _ioctl_failed(op, name, "", "Device or resource busy")
        raise _ioctl_failed(op, name, "", "No such device or address")
    return dev


def _reload(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    if not parsed.positionals:
        raise DmError("Please specify device.\n\nCommand failed.\n")
    name = parsed.positionals[0]
    dev = _user_device(ctx, "reload", name)
    try:
        dev["inactive"] = parse_table(ctx.state, ctx.node, _table_text(ctx, parsed, 1), name)
    except ValueError as exc:
        raise _ioctl_failed("reload", name, "", str(exc)) from None
    return ctx.ok()


def _rename(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    """``rename OLD NEW`` or ``rename NAME --setuuid UUID``. As dm-ioctl's hash rename does, a uuid is set only on
    a device that has none (a second attempt is EINVAL), and neither a name nor a uuid another device holds is
    taken (EBUSY)."""
    if not parsed.positionals:
        raise DmError("Please specify device.\n\nCommand failed.\n")
    name = parsed.positionals[0]
    new_uuid = parsed.last("setuuid")
    if (new_uuid is None) == (len(parsed.positionals) < 2):
        raise DmError("Usage: rename <device> [--setuuid] <new_name_or_uuid>\nCommand failed.\n")
    ns = ctx.node_state
    dev = _user_device(ctx, "rename", name)
    if new_uuid is not None:
        if not new_uuid or uuid_holder(ns, new_uuid) not in (None, name):
            raise _ioctl_failed("rename", name, "", "Device or resource busy")
        if dev.get("uuid"):
            raise _ioctl_failed("rename", name, "", "Invalid argument")
        dev["uuid"] = new_uuid
        return ctx.ok()
    new_name = parsed.positionals[1]
    if device_named(ns, new_name) is not None:
        raise _ioctl_failed("rename", name, "", "Device or resource busy")
    if "/" in new_name or len(new_name) > 127:
        raise _ioctl_failed("rename", name, "", "Invalid argument")
    ns["dm"][new_name] = ns["dm"].pop(name)
    return ctx.ok()


def _suspend(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    for name in parsed.positionals or []:
        _user_device(ctx, "suspend", name)["suspended"] = True
    if not parsed.positionals:
        raise DmError("Please specify device.\n\nCommand failed.\n")
    return ctx.ok()


def _resume(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    if not parsed.positionals:
        raise DmError("Please specify device.\n\nCommand failed.\n")
    for name in parsed.positionals:
        dev = _user_device(ctx, "resume", name)
        if dev.get("inactive") is not None:
            dev["table"] = dev["inactive"]
            dev["inactive"] = None
        dev["suspended"] = False
    return ctx.ok()


def _remove(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    if not parsed.positionals:
        raise DmError("Please specify device.\n\nCommand failed.\n")
    for name in parsed.positionals:
        _user_device(ctx, "remove", name)
        if open_count(ctx.state, ctx.node, f"/dev/mapper/{name}") > 0:
            raise _ioctl_failed("remove", name, "", "Device or resource busy")
        del ctx.node_state["dm"][name]
    return ctx.ok()


def _selected(ctx: CommandContext, parsed: Parsed) -> list[tuple[str, dict[str, Any]]]:
    if parsed.positionals:
        # Named devices are looked up one by one: building every LV's table for one name cost a scan of the node.
        chosen = []
        for name in parsed.positionals:
            found = device_named(ctx.node_state, name)
            if found is None:
                raise DmError("Device does not exist.\nCommand failed.\n")
            chosen.append((name, found))
        return chosen
    return sorted(all_devices(ctx.node_state).items())


def _table(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    chosen = _selected(ctx, parsed)
    if not chosen:
        return ctx.ok("No devices found\n")
    single = len(parsed.positionals) == 1
    lines = []
    for name, dev in chosen:
        table = dev.get("table") or []
        if parsed.has("target"):
            table = [line for line in table if line["target"] == parsed.last("target")]
        for line in table:
            text = format_line(ctx.state, ctx.node, line)
            lines.append(text if single else f"{name}: {text}")
        if not table and not single:
            lines.append(f"{name}: ")
    return ctx.ok("".join(line + "\n" for line in lines))


def _attr(dev: dict[str, Any]) -> str:
    live = "L" if dev.get("table") else "-"
    inactive = "I" if dev.get("inactive") is not None else "-"
    suspended = "s" if dev.get("suspended") else "-"
    access = "r" if dev.get("readonly") else "w"
    return live + inactive + suspended + access


def _fields(ctx: CommandContext, name: str, dev: dict[str, Any], counts: dict[str, int]) -> dict[str, str]:
    table = dev.get("table") or []
    return {
        "name": name, "major": str(DM_MAJOR), "minor": str(dev["minor"]), "attr": _attr(dev),
        "open": str(counts.get(f"{DM_MAJOR}:{dev['minor']}", 0)), "segments": str(len(table)),
        "events": "0", "uuid": str(dev.get("uuid") or ""), "subsystem": _subsystem(dev),
        "blkdevname": f"dm-{dev['minor']}",
    }


def _subsystem(dev: dict[str, Any]) -> str:
    uuid = str(dev.get("uuid") or "")
    prefix, dash, _ = uuid.partition("-")
    return prefix if dash else ""


_INFO_HEADINGS = {"name": "Name", "major": "Maj", "minor": "Min", "attr": "Stat", "open": "Open", "segments": "Targ",
                  "events": "Event", "uuid": "UUID", "subsystem": "Subsys", "blkdevname": "BlkDevName"}
_INFO_DEFAULT = ("name", "major", "minor", "attr", "open", "segments", "events", "uuid")


def _info(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    chosen = _selected(ctx, parsed)
    if not parsed.has("columns"):
        if not chosen:
            return ctx.ok("No devices found\n")
        blocks = [_info_long(ctx, name, dev) for name, dev in chosen]
        return ctx.ok("\n".join(blocks) + "\n")
    fields: list[str] = []
    for group in parsed.all("options") or [",".join(_INFO_DEFAULT)]:
        for field in (f.strip() for f in group.split(",")):
            if field not in _INFO_HEADINGS:
                raise DmError(f"Unrecognised field: {field}\nCommand failed.\n")
            fields.append(field)
    if parsed.positionals:  # a few named devices: count their holders alone
        counts = {f"{DM_MAJOR}:{dev['minor']}": open_count(ctx.state, ctx.node, f"{DM_MAJOR}:{dev['minor']}")
                  for _, dev in chosen}
    else:
        counts = open_counts(ctx.state, ctx.node)
    rows = [_fields(ctx, name, dev, counts) for name, dev in chosen]
    if not rows:
        return ctx.ok("No devices found\n")
    separator = parsed.last("separator")
    headings = not parsed.has("noheadings")
    if separator is not None:
        out = [separator.join(_INFO_HEADINGS[f] for f in fields)] if headings else []
        out += [separator.join(row[f] for f in fields) for row in rows]
    else:
        # libdm's report counts the headings in the column widths even when it does not print them.
        widths = {f: max([len(_INFO_HEADINGS[f])] + [len(r[f]) for r in rows]) for f in fields}
        out = [" ".join(_INFO_HEADINGS[f].ljust(widths[f]) for f in fields)] if headings else []
        out += [" ".join(_cell(f, r[f], widths[f]) for f in fields) for r in rows]
    return ctx.ok("".join(line + "\n" for line in out))


def _cell(field: str, value: str, width: int) -> str:
    return value.rjust(width) if field in ("major", "minor", "open", "segments", "events") else value.ljust(width)


def _info_long(ctx: CommandContext, name: str, dev: dict[str, Any]) -> str:
    live = bool(dev.get("table"))
    inactive = dev.get("inactive") is not None
    tables = "LIVE & INACTIVE" if live and inactive else "LIVE" if live else "INACTIVE" if inactive else "None"
    lines = [
        f"Name:              {name}",
        f"State:             {'SUSPENDED' if dev.get('suspended') else 'ACTIVE'}"
        f"{' (READ-ONLY)' if dev.get('readonly') else ''}",
        "Read Ahead:        256",
        f"Tables present:    {tables}",
        f"Open count:        {open_count(ctx.state, ctx.node, f'/dev/mapper/{name}')}",
        "Event number:      0",
        f"Major, minor:      {DM_MAJOR}, {dev['minor']}",
        f"Number of targets: {len(dev.get('table') or [])}",
    ]
    if dev.get("uuid"):
        lines.append(f"UUID: {dev['uuid']}")
    return "\n".join(lines) + "\n"


def _ls(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    devices = sorted(all_devices(ctx.node_state).items())
    if parsed.has("target"):
        wanted = parsed.last("target")
        devices = [(n, d) for n, d in devices if any(line["target"] == wanted for line in d.get("table") or [])]
    if not devices:
        return ctx.ok("No devices found\n")
    return ctx.ok("".join(f"{name}\t({DM_MAJOR}:{dev['minor']})\n" for name, dev in devices))


def _version(ctx: CommandContext, parsed: Parsed) -> CommandResult:
    return ctx.ok("Library version:   1.02.185 (2022-05-18)\nDriver version:    4.47.0\n")


_SUBCOMMANDS = {"version": _version, "create": _create, "reload": _reload, "load": _reload, "suspend": _suspend,
                "resume": _resume, "remove": _remove, "rename": _rename, "table": _table, "info": _info, "ls": _ls}


@command("dmsetup")
def dmsetup(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] == ["--version"]:
        return _version(ctx, Parsed())
    try:
        parsed = scan(argv[1:], _SPEC)
    except OptionError as exc:
        return ctx.fail(EXIT_FAILED, f"dmsetup: {exc.reason} -- '{exc.option.lstrip('-')}'\nCommand failed.\n")
    if not parsed.positionals:
        return ctx.fail(EXIT_FAILED, "Usage:\n\ndmsetup\n        [--version] [-h|--help [-c|-C|--columns]]\n")
    sub = parsed.positionals.pop(0)
    handler = _SUBCOMMANDS.get(sub)
    if handler is None:
        return ctx.fail(EXIT_FAILED, f"Unknown command: {sub}\nCommand failed.\n")
    try:
        return handler(ctx, parsed)
    except DmError as exc:
        raise ctx.abort(exc.code, exc.message, exc.stdout) from None


@virtual_dir("/dev/mapper")
def mapper_entries(ctx: CommandContext) -> tuple[str, ...]:
    return ("control", *sorted(all_devices(ctx.node_state)))
