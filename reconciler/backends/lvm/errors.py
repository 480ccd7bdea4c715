"""What LVM's failures say: the messages that mean "try again".

lvm2 exits 5 for nearly everything, so only its words tell a lock held by another LVM command (which is
released within moments) from a real failure. Registered in
:data:`reconciler.backends.registry.TRANSIENT_PATTERNS`.
"""

from __future__ import annotations

import re

# Another LVM command (or lvmlockd) holds the lock: the same command succeeds once it is released.
TRANSIENT_PATTERNS = (
    re.compile(r"lock(ing)? .*(failed|held|timed out)|Can't get lock|Failed to acquire lock", re.I),
)
