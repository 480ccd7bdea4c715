"""Online verification: the ``verify`` section of a VM file (and of ``defaults`` in cluster.yaml).

``verify: {schedule: weekly, rate: 10M, alg: sha256}`` asks the daemon on the VM's primary to run
``drbdadm verify`` once per interval. DRBD compares a checksum of every block on both nodes; blocks that
differ are only marked out of sync, never copied. They are resynced when the desired state names the
verify run they came from (``resync_found: <run id>``, the id status and metrics show), by one
``drbdadm disconnect`` + ``drbdadm connect`` of the primary: DRBD resyncs every block marked out of sync
when a connection is established.

What is rendered into the resource file (both DRBD 8.4 and 9 read these in the same sections):

- ``net { verify-alg ALG; }``: the kernel crypto hash both nodes compute; ``drbdadm verify`` fails without it.
  Adding or changing it on a connected resource is a ``drbdadm adjust`` of net options, applied online.
- ``disk { c-max-rate RATE; resync-rate RATE; }``: DRBD paces verify requests with the resync controller
  (``drbd_rs_number_requests()`` serves ``make_ov_request()`` and ``make_resync_request()`` alike): with the
  dynamic controller (``c-plan-ahead`` > 0, DRBD's default) the rate is capped by ``c-max-rate``, with the fixed
  one (``c-plan-ahead 0``) it is ``resync-rate``. Both are set to ``rate``, so it bounds a verify whichever
  controller runs; it bounds every resync of the resource too (after a failover or a reconnect), which is the
  price of a limit DRBD has no separate knob for. Without ``rate`` nothing is rendered and DRBD's defaults apply.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr

from reconciler.sizes import GIB, KIB, SizeError, parse_size

VerifyAlg = Literal["crc32c", "md5", "sha1", "sha256", "sha512"]
DEFAULT_ALG: VerifyAlg = "sha256"
HOUR = 3600
DAY = 24 * HOUR
NAMED_SCHEDULES = {"daily": DAY, "weekly": 7 * DAY}
MIN_INTERVAL = HOUR  # a verify of a large device runs for hours; starting more often only queues them
MAX_INTERVAL = 366 * DAY
# DRBD's limits for c-max-rate (drbd_limits.h: DRBD_C_MAX_RATE_MIN 250, _MAX 4 << 20, in KiB/s).
MIN_RATE = 250 * KIB
MAX_RATE = 4 * GIB
_DURATION = re.compile(r"([0-9]{1,6})([mhdw])")
_UNIT_SECONDS = {"m": 60, "h": HOUR, "d": DAY, "w": 7 * DAY}
# A run id names one verify run: the UTC time it started, as status shows it (e.g. 20261206T101500Z).
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z")


class VerifySettingError(ValueError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def parse_schedule(value: object) -> int | None:
    """Seconds between runs; None for ``off`` (a VM that opts out of a cluster default)."""
    hint = "write daily, weekly, off or an interval like 12h, 3d, 2w"
    if value is False:  # YAML 1.1 reads a bare off as false
        return None
    if not isinstance(value, str):
        raise VerifySettingError(f"{value!r} is not a schedule", hint)
    text = value.strip().lower()
    if text == "off":
        return None
    if text in NAMED_SCHEDULES:
        return NAMED_SCHEDULES[text]
    match = _DURATION.fullmatch(text)
    if match is None:
        raise VerifySettingError(f"{value!r} is not a schedule", hint)
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise VerifySettingError(
            f"{value!r} is outside 1h-366d: a verify reads the whole device on both nodes",
            "use daily or weekly for most clusters",
        )
    return seconds


def _schedule(value: object) -> str:
    if parse_schedule(value) is None:
        return "off"
    return str(value).strip().lower()


def _rate(value: object) -> int:
    try:
        rate = parse_size(value)
    except SizeError as exc:
        raise VerifySettingError(str(exc), "give bytes per second with a binary unit, e.g. 10M") from None
    if rate % KIB:
        raise VerifySettingError(f"{value!r} is not a whole number of KiB per second", "e.g. 10M or 512K")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise VerifySettingError(f"{value!r} is outside 250K-4G per second, DRBD's range for c-max-rate", "e.g. 10M")
    return rate


def _run_id(value: object) -> str:
    if not isinstance(value, str) or not RUN_ID.fullmatch(value):
        raise VerifySettingError(
            f"{value!r} is not a verify run id",
            "copy the run id from `reconciler status` (e.g. 20261206T101500Z), in quotes",
        )
    return value


Schedule = Annotated[StrictStr, BeforeValidator(_schedule)]
Rate = Annotated[int, BeforeValidator(_rate)]
RunId = Annotated[str, BeforeValidator(_run_id)]


class VerifySection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: Schedule | None = None
    rate: Rate | None = None
    alg: VerifyAlg | None = None
    # The one-shot statement: resync the blocks the named run found out of sync (run once, recorded).
    resync_found: RunId | None = None


# Pass-through options (drbd.options) that verify.rate decides: set there too, they would contradict it.
RATE_OPTIONS = (("disk", "c-max-rate"), ("disk", "resync-rate"), ("disk", "c-plan-ahead"))


