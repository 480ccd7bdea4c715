"""The timeout of each command of an observation pass.

Kept apart so that a fresh command can start the pass's reports before it imports the rest (see
reconciler.host.prefetch): this module imports nothing.
"""

from __future__ import annotations

OBSERVE_TIMEOUT = 30.0
