"""What operators run on a node besides the loop: preflight checks (doctor), shutting the node down,
suspend/resume and the other control requests, the node's identity, the one-daemon lock, and starting
domains outside the daemon's cgroup.

These are reached from the command line as well as from the loop, so they stay free of the loop's state.
"""
