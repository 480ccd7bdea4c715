"""What the daemon records for others to read: the published node status, small named records in the
state directory, and its event log lines.

The bottom of the daemon: every other part of it writes through these, and these import none of it.
"""
