"""Simulated block-device tools: ``blkid``, ``mkfs.xfs``, ``xfs_db``, ``mkswap``, ``wipefs``, ``mount``, ``umount``.

What a device holds is its content record (:func:`reconciler.sim.state.content`): a filesystem or swap
``signature`` and, on a DRBD backing device, DRBD's internal metadata (``drbd_md``) at its end. A
``/dev/drbdN`` path resolves to its backing device's record but hides the metadata, as DRBD does.

Behaviour follows util-linux 2.38 and xfsprogs 6.1 (Debian 12): ``mkfs.xfs`` refuses an existing
signature without ``-f`` (exit 1); ``mkswap`` wipes every other signature with a warning and never
refuses; ``blkid -p`` exits 2 when it finds nothing and reports DRBD metadata as ``TYPE=drbd``
(RAID-like signatures win over a filesystem at offset 0, as in libblkid); tools that open a device
exclusively (``mkfs.xfs``, ``mkswap``, ``wipefs -a``) fail with "Device or resource busy" while a dm
table, DRBD, a mount or a running domain holds it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from reconciler.host.base import CommandResult
from reconciler.sim.commands import CommandContext, command, virtual_file
from reconciler.sim.options import OptionError, scan
from reconciler.sim.roles import drbd_role, is_drbd_path
from reconciler.sim.state import content, device_size, new_uuid, open_count, peek_content

XFS_MIN_BYTES = 300 * 1024 * 1024
XFS_MIN_DATA_BLOCKS = 4096  # of 4 KiB: below this mkfs.xfs refuses before it checks the 300 MB minimum
SWAP_MIN_BYTES = 40 * 1024
PAGE = 4096
DRBD_MAGIC = {"v08": "83 74 02 6b", "v09": "83 74 02 6d"}


# --- what a path shows ------------------------------------------------------------------------


def visible_signatures(ctx: CommandContext, path: str) -> list[dict[str, Any]]:
    """Signatures a probe of ``path`` finds, in libblkid's order (DRBD metadata first)."""
    key = ctx.resolve_device(path)
    if key is None:
        return []
    record = peek_content(ctx.state, key)
    found: list[dict[str, Any]] = []
    md = record.get("drbd_md")
    if md and not is_drbd_path(path):
        found.append(_drbd_signature(ctx, key, md))
    if record.get("signature"):
        found.append(dict(record["signature"]))
    return found


def _drbd_signature(ctx: CommandContext, key: str, md: Any) -> dict[str, Any]:
    version = "v08" if ctx.node_state.get("drbd_version") == "8.4" else "v09"
    device_uuid = md.get("device_uuid") if isinstance(md, dict) else None
    if not isinstance(device_uuid, str):
        device_uuid = hashlib.sha256(key.encode()).hexdigest()[:16].upper()
    return {"type": "drbd", "uuid": device_uuid, "version": version}


def _signature_offset(ctx: CommandContext, path: str, signature: dict[str, Any]) -> int:
    kind = signature.get("type")
    if kind == "swap":
        return PAGE - 10
    if kind == "drbd":
        size = device_size(ctx.state, ctx.node, path) or 0
        return max(size - PAGE + 60, 0)
    return 0


def _magic(signature: dict[str, Any]) -> tuple[int, str]:
    kind = signature.get("type")
    if kind == "swap":
        return 10, "53 57 41 50 53 50 41 43 45 32"
    if kind == "drbd":
        return 4, DRBD_MAGIC.get(str(signature.get("version")), DRBD_MAGIC["v09"])
    if kind == "xfs":
        return 4, "58 46 53 42"
    return 4, "00 00 00 00"


def _failed(ctx: CommandContext, path: str) -> bool:
    key = ctx.resolve_device(path)
    return key is not None and bool(peek_content(ctx.state, key).get("failed"))


def _busy(ctx: CommandContext, path: str) -> bool:
    return open_count(ctx.state, ctx.node, path) > 0


def _mounted_at(ctx: CommandContext, path: str) -> str | None:
    key = ctx.resolve_device(path)
    for mount in ctx.node_state.get("mounts", []):
        if mount["device"] == path or (key is not None and ctx.resolve_device(mount["device"]) == key):
            return str(mount["mountpoint"])
    return None


def _write(ctx: CommandContext, path: str, signature: dict[str, Any] | None) -> None:
    """Replace what the device holds; on a backing device this also wipes DRBD metadata."""
    key = ctx.resolve_device(path)
    if key is None:
        return
    record = content(ctx.state, key)
    record["signature"] = signature
    if not is_drbd_path(path):
        record.pop("drbd_md", None)


# --- blkid ------------------------------------------------------------------------------------

_BLKID_SPEC: dict[str, tuple[str, bool]] = {
    "-p": ("probe", False), "--probe": ("probe", False), "-o": ("output", True), "--output": ("output", True),
    "-s": ("tag", True), "--match-tag": ("tag", True), "-c": ("cache", True), "--cache-file": ("cache", True),
    "-i": ("info", False), "--info": ("info", False), "-L": ("label", True), "-U": ("uuid", True),
    "-w": ("write", True), "-g": ("gc", False), "-l": ("lookup", False), "-d": ("noencoding", False),
    "-u": ("usages", True), "--usages": ("usages", True), "-n": ("types", True), "--match-types": ("types", True),
}


def _blkid_values(signature: dict[str, Any], probe: bool) -> list[tuple[str, str]]:
    kind = str(signature.get("type"))
    values: list[tuple[str, str]] = []
    if signature.get("label"):
        values.append(("LABEL", str(signature["label"])))
    if signature.get("uuid"):
        values.append(("UUID", str(signature["uuid"])))
    if kind == "swap" and probe:
        values.append(("VERSION", "1"))
    if kind == "drbd" and probe:
        values.append(("VERSION", str(signature.get("version", "v09"))))
    if kind == "xfs":
        values.append(("BLOCK_SIZE", "512"))
    values.append(("TYPE", kind))
    if probe:
        usage = {"xfs": "filesystem", "swap": "other", "drbd": "raid"}.get(kind, "filesystem")
        values.append(("USAGE", usage))
    return values


UTIL_LINUX = "2.38.1"


@command("blkid")
def blkid(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] in (["-V"], ["--version"]):
        return ctx.ok(f"blkid from util-linux {UTIL_LINUX}  (libblkid {UTIL_LINUX}, 04-Aug-2022)\n")
    try:
        parsed = scan(argv[1:], _BLKID_SPEC)
    except OptionError as exc:
        return ctx.fail(2, f"blkid: {exc.reason} -- '{exc.option.lstrip('-')}'\n")
    output = parsed.last("output", "full") or "full"
    if output not in ("full", "value", "export", "device", "list", "udev"):
        return ctx.fail(4, f'blkid: unsupported output format {output}\n')
    tags = set(parsed.all("tag"))
    probe = parsed.has("probe")
    devices = parsed.positionals
    if not devices:
        if probe:
            return ctx.fail(4, "blkid: The low-level probing mode requires a device\n")
        return ctx.fail(2, "")
    out: list[str] = []
    code = 2
    errors: list[str] = []
    for path in devices:
        if not ctx.device_exists(path):
            if probe:
                errors.append(f"blkid: error: {path}: No such file or directory\n")
            continue
        if _failed(ctx, path):
            if probe:
                errors.append(f"blkid: error: {path}: Input/output error\n")
                code = 4
            continue
        role = drbd_role(ctx.state, ctx.node, path)
        if role is not None and role != "Primary" and ctx.node_state.get("drbd_version") == "8.4":
            # Real DRBD 8.4 (the lab's corpus): a Secondary refuses to be opened, so probing fails.
            if probe:
                errors.append(f"blkid: error: {path}: Wrong medium type\n")
            continue
        signatures = visible_signatures(ctx, path)
        if not signatures:
            continue
        values = [(k, v) for k, v in _blkid_values(signatures[0], probe) if not tags or k in tags]
        if not values:
            continue
        code = 0
        out.append(_render_blkid(path, values, output))
    return ctx.result(code, "".join(out), "".join(errors))


def _render_blkid(path: str, values: list[tuple[str, str]], output: str) -> str:
    if output == "export":
        return f"DEVNAME={path}\n" + "".join(f"{k}={v}\n" for k, v in values)
    if output == "value":
        return "".join(f"{v}\n" for _, v in values)
    if output == "udev":
        return "".join(f"ID_FS_{k}={v}\n" for k, v in values)
    if output == "device":
        return f"{path}\n"
    return f"{path}: " + " ".join(f'{k}="{v}"' for k, v in values) + "\n"


# --- mkfs.xfs ---------------------------------------------------------------------------------

_MKFS_SPEC: dict[str, tuple[str, bool]] = {
    "-f": ("force", False), "-q": ("quiet", False), "-L": ("label", True), "-K": ("nodiscard", False),
    "-m": ("meta", True), "-b": ("block", True), "-d": ("data", True), "-i": ("inode", True), "-l": ("log", True),
    "-n": ("naming", True), "-s": ("sector", True), "-N": ("dryrun", False),
}


@command("mkfs.xfs")
def mkfs_xfs(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] == ["-V"]:
        return ctx.ok("mkfs.xfs version 6.1.0\n")
    try:
        parsed = scan(argv[1:], _MKFS_SPEC)
    except OptionError as exc:
        return ctx.fail(1, f"mkfs.xfs: {exc.reason} -- '{exc.option.lstrip('-')}'\n")
    if len(parsed.positionals) != 1:
        return ctx.fail(1, "mkfs.xfs: no device name given in argument list\n")
    path = parsed.positionals[0]
    prog = "mkfs.xfs"
    if not ctx.device_exists(path):
        return ctx.fail(1, f"Error accessing specified device {path}: No such file or directory\n")
    mountpoint = _mounted_at(ctx, path)
    if mountpoint is not None:
        return ctx.fail(1, f"{prog}: {path} contains a mounted filesystem\n")
    if _busy(ctx, path) or drbd_role(ctx.state, ctx.node, path) not in (None, "Primary"):
        return ctx.fail(1, f"{prog}: cannot open {path}: Device or resource busy\n")
    size = device_size(ctx.state, ctx.node, path)
    if size is None and is_drbd_path(path):
        size = _drbd_size(ctx, path)
    if size is not None and size // 4096 < XFS_MIN_DATA_BLOCKS:
        return ctx.fail(1, f"size {size // 4096} of data subvolume is too small, minimum {XFS_MIN_DATA_BLOCKS} "
                           f"blocks\n{_MKFS_USAGE}")
    if size is not None and size < XFS_MIN_BYTES:
        return ctx.fail(1, f"Filesystem must be larger than 300MB.\n{_MKFS_USAGE}")
    signatures = visible_signatures(ctx, path)
    if signatures and not parsed.has("force"):
        kind = signatures[0]["type"]
        return ctx.fail(1, f"{prog}: {path} appears to contain an existing filesystem ({kind}).\n"
                           f"{prog}: Use the -f option to force overwrite.\n")
    if _failed(ctx, path):
        return ctx.fail(1, f"{prog}: pwrite failed: Input/output error\n")
    if parsed.has("dryrun"):
        return ctx.ok(_mkfs_report(path, size or XFS_MIN_BYTES))
    signature: dict[str, Any] = {"type": "xfs", "uuid": new_uuid()}
    if parsed.last("label"):
        signature["label"] = parsed.last("label")
    _write(ctx, path, signature)
    return ctx.ok("" if parsed.has("quiet") else _mkfs_report(path, size or XFS_MIN_BYTES))


# --- xfs_db (the superblock read the executor makes before it redoes an interrupted mkfs) ------

XFS_DB_INPROGRESS = ["-r", "-c", "sb 0", "-c", "print inprogress"]


@command("xfs_db")
def xfs_db(ctx: CommandContext, argv: list[str]) -> CommandResult:
    """Only the read of ``sb_inprogress``; an interrupted mkfs leaves ``"inprogress": True`` in the signature.

    Outputs as xfsprogs 6.1.0 prints them (tests/parsers/fixtures/xfs_db-*)."""
    if argv[1:] == ["-V"]:
        return ctx.ok("xfs_db version 6.1.0\n")
    if argv[1:-1] != XFS_DB_INPROGRESS:
        return ctx.fail(1, f"xfs_db: the simulator reads only `{' '.join(XFS_DB_INPROGRESS)} DEVICE`\n")
    path = argv[-1]
    if not ctx.device_exists(path):
        return ctx.fail(1, f"xfs_db: {path}: No such file or directory\n")
    if _failed(ctx, path):
        return ctx.fail(1, "xfs_db: read failed: Input/output error\n")
    role = drbd_role(ctx.state, ctx.node, path)
    if role is not None and role != "Primary" and ctx.node_state.get("drbd_version") == "8.4":
        # As blkid above: a DRBD 8.4 Secondary refuses to be opened (this message is not a captured one).
        return ctx.fail(1, f"xfs_db: {path}: Wrong medium type\n")
    found = [sig for sig in visible_signatures(ctx, path) if sig.get("type") == "xfs"]
    if not found:
        return ctx.fail(1, f"xfs_db: {path} is not a valid XFS filesystem (unexpected SB magic number 0x00000000)\n"
                           "Use -F to force a read attempt.\n")
    return ctx.ok(f"inprogress = {int(bool(found[0].get('inprogress')))}\n")


def _drbd_size(ctx: CommandContext, path: str) -> int | None:
    """A DRBD device's usable size (its backing device less the internal metadata), as sysfs shows it."""
    minor = path.removeprefix("/dev/drbd")
    text = ctx.read_file(f"/sys/devices/virtual/block/drbd{minor}/size") if minor.isdigit() else None
    return int(text) * 512 if text and text.strip().isdigit() else None


# What mkfs.xfs 6.1.0 prints after refusing a device as too small (tests/sim/fixtures/mkfs-xfs-*.txt).
_MKFS_USAGE = (
    'Usage: mkfs.xfs\n'
    '/* blocksize */\t\t[-b size=num]\n'
    '/* config file */\t[-c options=xxx]\n'
    '/* metadata */\t\t[-m crc=0|1,finobt=0|1,uuid=xxx,rmapbt=0|1,reflink=0|1,\n'
    '\t\t\t    inobtcount=0|1,bigtime=0|1]\n'
    '/* data subvol */\t[-d agcount=n,agsize=n,file,name=xxx,size=num,\n'
    '\t\t\t    (sunit=value,swidth=value|su=num,sw=num|noalign),\n'
    '\t\t\t    sectsize=num\n'
    '/* force overwrite */\t[-f]\n'
    '/* inode size */\t[-i perblock=n|size=num,maxpct=n,attr=0|1|2,\n'
    '\t\t\t    projid32bit=0|1,sparse=0|1,nrext64=0|1]\n'
    '/* no discard */\t[-K]\n'
    '/* log subvol */\t[-l agnum=n,internal,size=num,logdev=xxx,version=n\n'
    '\t\t\t    sunit=value|su=num,sectsize=num,lazy-count=0|1]\n'
    '/* label */\t\t[-L label (maximum 12 characters)]\n'
    '/* naming */\t\t[-n size=num,version=2|ci,ftype=0|1]\n'
    '/* no-op info only */\t[-N]\n'
    '/* prototype file */\t[-p fname]\n'
    '/* quiet */\t\t[-q]\n'
    '/* realtime subvol */\t[-r extsize=num,size=num,rtdev=xxx]\n'
    '/* sectorsize */\t[-s size=num]\n'
    '/* version */\t\t[-V]\n'
    '\t\t\tdevicename\n'
    '<devicename> is required unless -d name=xxx is given.\n'
    '<num> is xxx (bytes), xxxs (sectors), xxxb (fs blocks), xxxk (xxx KiB),\n'
    '      xxxm (xxx MiB), xxxg (xxx GiB), xxxt (xxx TiB) or xxxp (xxx PiB).\n'
    '<value> is xxx (512 byte blocks).\n'
)


def _mkfs_report(path: str, size: int) -> str:
    """The geometry mkfs.xfs 6.1 prints for a single disk (4 AGs, log of 1/2048 of the blocks, at least 64 MiB)."""
    blocks = size // 4096
    agcount = 4
    agsize = -(-blocks // agcount)
    log_blocks = min(max(blocks // 2048, 16384), 521728)
    imaxpct = 25 if size < 1024**4 else 5
    return (
        f"meta-data={path:<22} isize=512    agcount={agcount}, agsize={agsize} blks\n"
        "         =                       sectsz=512   attr=2, projid32bit=1\n"
        "         =                       crc=1        finobt=1, sparse=1, rmapbt=0\n"
        "         =                       reflink=1    bigtime=1 inobtcount=1 nrext64=0\n"
        f"data     =                       bsize=4096   blocks={blocks}, imaxpct={imaxpct}\n"
        "         =                       sunit=0      swidth=0 blks\n"
        "naming   =version 2              bsize=4096   ascii-ci=0, ftype=1\n"
        f"log      =internal log           bsize=4096   blocks={log_blocks}, version=2\n"
        "         =                       sectsz=512   sunit=0 blks, lazy-count=1\n"
        "realtime =none                   extsz=4096   blocks=0, rtextents=0\n"
    )


# --- mkswap -----------------------------------------------------------------------------------

_MKSWAP_SPEC: dict[str, tuple[str, bool]] = {
    "-f": ("force", False), "--force": ("force", False), "-L": ("label", True), "--label": ("label", True),
    "-U": ("uuid", True), "--uuid": ("uuid", True), "-c": ("check", False), "--check": ("check", False),
    "-p": ("pagesize", True), "--pagesize": ("pagesize", True), "-q": ("quiet", False), "--quiet": ("quiet", False),
    "-v": ("version", True), "--swapversion": ("version", True),
}


def human_size(num_bytes: int) -> str:
    """util-linux's ``size_to_human_string`` with a space and a three-letter suffix: ``300 MiB``."""
    exp = 0
    for shift in range(10, 70, 10):
        if num_bytes < (1 << shift):
            exp = shift - 10
            break
    else:
        exp = 60
    letters = "BKMGTPE"
    suffix = "B" if exp == 0 else letters[exp // 10] + "iB"
    dec = num_bytes >> exp if exp else num_bytes
    frac = num_bytes & ((1 << exp) - 1) if exp else 0
    if frac:
        frac = (frac // (1 << (exp - 10)) + 50) // 100
        if frac == 10:
            dec += 1
            frac = 0
    return f"{dec}.{frac} {suffix}" if frac else f"{dec} {suffix}"


@command("mkswap")
def mkswap(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] in (["-V"], ["--version"]):
        return ctx.ok(f"mkswap from util-linux {UTIL_LINUX}\n")
    try:
        parsed = scan(argv[1:], _MKSWAP_SPEC)
    except OptionError as exc:
        return ctx.fail(1, f"mkswap: {exc.reason} -- '{exc.option.lstrip('-')}'\n")
    if not parsed.positionals:
        return ctx.fail(1, "mkswap: error: Nowhere to set up swap on?\n")
    path = parsed.positionals[0]
    if not ctx.device_exists(path):
        return ctx.fail(1, f"mkswap: cannot open {path}: No such file or directory\n")
    if _mounted_at(ctx, path) is not None:
        return ctx.fail(1, f"mkswap: error: {path} is mounted; will not make swapspace\n")
    if _busy(ctx, path):
        return ctx.fail(1, f"mkswap: cannot open {path}: Device or resource busy\n")
    size = device_size(ctx.state, ctx.node, path) or 0
    if size < SWAP_MIN_BYTES:
        return ctx.fail(1, "mkswap: error: swap area needs to be at least 40 KiB\n")
    if _failed(ctx, path):
        return ctx.fail(1, f"mkswap: {path}: unable to write signature page: Input/output error\n")
    warnings = "".join(f"mkswap: {path}: warning: wiping old {sig['type']} signature.\n"
                       for sig in visible_signatures(ctx, path) if sig.get("type") != "swap")
    swap_uuid = parsed.last("uuid") or new_uuid()
    signature: dict[str, Any] = {"type": "swap", "uuid": swap_uuid}
    label = parsed.last("label")
    if label:
        signature["label"] = label
    _write(ctx, path, signature)
    usable = size - PAGE
    label_text = f"LABEL={label}, UUID={swap_uuid}" if label else f"no label, UUID={swap_uuid}"
    stdout = f"Setting up swapspace version 1, size = {human_size(usable)} ({usable} bytes)\n{label_text}\n"
    return ctx.ok("" if parsed.has("quiet") else stdout, warnings)


# --- wipefs -----------------------------------------------------------------------------------

_WIPEFS_SPEC: dict[str, tuple[str, bool]] = {
    "-a": ("all", False), "--all": ("all", False), "-n": ("noact", False), "--no-act": ("noact", False),
    "-p": ("parsable", False), "--parsable": ("parsable", False), "-f": ("force", False), "--force": ("force", False),
    "-q": ("quiet", False), "--quiet": ("quiet", False), "-t": ("types", True), "--types": ("types", True),
    "-o": ("offset", True), "--offset": ("offset", True), "-b": ("backup", False), "--backup": ("backup", False),
    "-J": ("json", False), "--json": ("json", False), "-i": ("noheadings", False),
    "--noheadings": ("noheadings", False), "-O": ("output", True), "--output": ("output", True),
}


@command("wipefs")
def wipefs(ctx: CommandContext, argv: list[str]) -> CommandResult:
    if argv[1:] in (["-V"], ["--version"]):
        return ctx.ok(f"wipefs from util-linux {UTIL_LINUX}\n")
    try:
        parsed = scan(argv[1:], _WIPEFS_SPEC)
    except OptionError as exc:
        return ctx.fail(1, f"wipefs: {exc.reason} -- '{exc.option.lstrip('-')}'\n")
    if not parsed.positionals:
        return ctx.fail(1, "wipefs: no device specified\nTry 'wipefs --help' for more information.\n")
    erase = parsed.has("all") or parsed.has("offset")
    types = {t for group in parsed.all("types") for t in group.split(",") if t}
    out: list[str] = []
    for path in parsed.positionals:
        if not ctx.device_exists(path):
            return ctx.fail(1, f"wipefs: error: {path}: probing initialization failed: No such file or directory\n")
        if erase and not parsed.has("noact") and _busy(ctx, path) and not parsed.has("force"):
            return ctx.fail(1, f"wipefs: error: {path}: probing initialization failed: Device or resource busy\n")
        found = [(sig, _signature_offset(ctx, path, sig)) for sig in visible_signatures(ctx, path)]
        if types:
            found = [(sig, off) for sig, off in found if sig["type"] in types]
        if parsed.has("offset"):
            wanted = {int(o, 0) for o in parsed.all("offset")}
            found = [(sig, off) for sig, off in found if off in wanted]
        if erase:
            out.extend(_erase(ctx, path, found, dry=parsed.has("noact"), quiet=parsed.has("quiet")))
        elif parsed.has("parsable"):
            out.extend(f"0x{off:x},{sig.get('uuid', '')},{sig.get('label', '')},{sig['type']}\n" for sig, off in found)
        elif found:
            out.append(_wipefs_table(path, found, headings=not parsed.has("noheadings") and not out))
    return ctx.ok("".join(out))


def _erase(ctx: CommandContext, path: str, found: list[tuple[dict[str, Any], int]], *, dry: bool,
           quiet: bool) -> list[str]:
    lines = []
    key = ctx.resolve_device(path)
    for sig, off in found:
        length, magic = _magic(sig)
        lines.append(f"{path}: {length} bytes were erased at offset 0x{off:08x} ({sig['type']}): {magic}\n")
        if dry or key is None:
            continue
        record = content(ctx.state, key)
        if sig["type"] == "drbd":
            record.pop("drbd_md", None)
        else:
            record["signature"] = None
    return [] if quiet else lines


def _wipefs_table(path: str, found: list[tuple[dict[str, Any], int]], *, headings: bool) -> str:
    device = path.rsplit("/", 1)[-1]
    rows = [(device, f"0x{off:x}", str(sig["type"]), str(sig.get("uuid", "")), str(sig.get("label", "")))
            for sig, off in found]
    head = ("DEVICE", "OFFSET", "TYPE", "UUID", "LABEL")
    widths = [max(len(r[i]) for r in [*rows, head]) for i in range(5)]
    lines = [head] if headings else []
    lines += rows
    # libsmartcols pads every column but the last, and keeps the separator before an empty last cell.
    return "".join(" ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])), row[-1]]) + "\n"
                   for row in lines)


# --- mount / umount and /proc/mounts ----------------------------------------------------------

BASE_MOUNTS = (
    "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0",
    "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0",
    "udev /dev devtmpfs rw,nosuid,relatime,mode=755,inode64 0 0",
    "tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,mode=755,inode64 0 0",
    "/dev/md0 / ext4 rw,relatime,errors=remount-ro 0 0",
    "xenfs /proc/xen xenfs rw,relatime 0 0",
)

_MOUNT_SPEC: dict[str, tuple[str, bool]] = {
    "-t": ("type", True), "--types": ("type", True), "-o": ("options", True), "--options": ("options", True),
    "-r": ("readonly", False), "--read-only": ("readonly", False), "-w": ("rw", False), "-v": ("verbose", False),
}


@virtual_file("/proc/mounts", "/proc/self/mounts")
def proc_mounts(ctx: CommandContext) -> str:
    lines = list(BASE_MOUNTS)
    for mount in ctx.node_state.get("mounts", []):
        lines.append(f"{mount['device']} {mount['mountpoint']} {mount['fstype']} {mount['options']} 0 0")
    return "".join(line + "\n" for line in lines)


@command("mount")
def mount(ctx: CommandContext, argv: list[str]) -> CommandResult:
    try:
        parsed = scan(argv[1:], _MOUNT_SPEC)
    except OptionError as exc:
        return ctx.fail(1, f"mount: {exc.reason} -- '{exc.option.lstrip('-')}'\n")
    if not parsed.positionals:
        listing = "".join(f"{m['device']} on {m['mountpoint']} type {m['fstype']} ({m['options']})\n"
                          for m in ctx.node_state.get("mounts", []))
        return ctx.ok(listing)
    if len(parsed.positionals) != 2:
        return ctx.fail(1, "mount: bad usage\nTry 'mount --help' for more information.\n")
    device, mountpoint = parsed.positionals
    if not ctx.device_exists(device):
        return ctx.fail(32, f"mount: {mountpoint}: special device {device} does not exist.\n")
    mounts: list[dict[str, Any]] = ctx.node_state.setdefault("mounts", [])
    for existing in mounts:
        if existing["mountpoint"] == mountpoint and existing["device"] == device:
            return ctx.fail(32, f"mount: {mountpoint}: {device} already mounted on {mountpoint}.\n")
    if _busy(ctx, device):
        return ctx.fail(32, f"mount: {mountpoint}: {device} already mounted or mount point busy.\n")
    role = drbd_role(ctx.state, ctx.node, device)
    if role is not None and role != "Primary":
        return ctx.fail(32, f"mount: {mountpoint}: mount(2) system call failed: Wrong medium type.\n")
    if _failed(ctx, device):
        return ctx.fail(32, f"mount: {mountpoint}: can't read superblock on {device}.\n")
    signatures = visible_signatures(ctx, device)
    fstype = parsed.last("type")
    found = signatures[0]["type"] if signatures else None
    if found in ("swap", "drbd"):
        return ctx.fail(32, f"mount: {mountpoint}: unknown filesystem type '{found}'.\n")
    if found is None or (fstype not in (None, "auto") and fstype != found):
        return ctx.fail(32, f"mount: {mountpoint}: wrong fs type, bad option, bad superblock on {device}, "
                            "missing codepage or helper program, or other error.\n")
    options = "ro,relatime" if parsed.has("readonly") else "rw,relatime"
    if found == "xfs":
        options += ",attr2,inode64,logbufs=8,logbsize=32k,noquota"
    mounts.append({"device": device, "mountpoint": mountpoint, "fstype": found, "options": options})
    return ctx.ok()


@command("umount")
def umount(ctx: CommandContext, argv: list[str]) -> CommandResult:
    targets = [a for a in argv[1:] if not a.startswith("-")]
    if not targets:
        return ctx.fail(1, "umount: bad usage\nTry 'umount --help' for more information.\n")
    mounts: list[dict[str, Any]] = ctx.node_state.setdefault("mounts", [])
    for target in targets:
        index = next((i for i in range(len(mounts) - 1, -1, -1)
                      if target in (mounts[i]["mountpoint"], mounts[i]["device"])), None)
        if index is None:
            if ctx.device_exists(target):
                return ctx.fail(32, f"umount: {target}: not mounted.\n")
            return ctx.fail(32, f"umount: {target}: no mount point specified.\n")
        mounts.pop(index)
    return ctx.ok()
