"""The other node: the signed peer-status channel (server, client, authentication, replay guard, key
files), DRBD's fence-peer and split-brain handlers, the power fence, and automatic failover.

Used by the loop and by the handlers DRBD starts as separate processes, so none of it imports the loop.
"""
