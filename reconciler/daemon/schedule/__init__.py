"""When a pass runs: when the next one is due, the reasons that wake the loop, the threads that only
signal them (fetch, DRBD and domain watchers), the backoff after errors, the clock, and the liveness the
watchdog is fed by.

Nothing here acts on the node or runs a pass, so the timing is tested on a virtual clock without a loop.
"""
