"""What DRBD's failures say about the node's state: the messages that mean "wait", not "failed", and the exit
code that means "try again".

A promotion refused because the peer is still Primary, or a step refused while a resync runs, succeeds later
without the reconciler doing anything; the executor's classification (:mod:`reconciler.apply.classify`)
requeues such a step without counting a failure. Registered in
:data:`reconciler.backends.registry.PRECONDITION_PATTERNS`, :data:`reconciler.backends.registry.TRANSIENT_PATTERNS`
and :data:`reconciler.backends.registry.TRANSIENT_EXIT_CODES`.
"""

from __future__ import annotations

import re

# A state that will change without our doing anything (the peer demotes, a resync finishes, the peer
# comes up): requeue without counting a failure.
PRECONDITION_PATTERNS = (
    re.compile(r"Multiple primaries not allowed", re.I),
    re.compile(r"peer .*is (still )?primary", re.I),
    re.compile(r"Need access to UpToDate data", re.I),
    re.compile(r"No up-to-date disk|no UpToDate disk", re.I),
    re.compile(r"Refusing to be Primary while peer is not outdated", re.I),
    re.compile(r"State change was refused by peer", re.I),
    re.compile(r"Resync (is )?running|resync in progress", re.I),
    re.compile(r"Not connected|Need a connection|StandAlone", re.I),
    re.compile(r"device is held open|Device is held open by someone", re.I),
)

# drbdadm gives each drbdsetup it runs a few seconds and kills it after that (drbdadm's own timeouts): on a
# loaded node a kernel step that merely took longer ends so. Seen on DRBD 8.4 under load: "Command
# 'drbdsetup-84 new-resource vm100' did not terminate within 5 seconds after 2 attempts" (exit 20). The same
# command is expected to succeed once the node is less busy; a retry that finds the step done fails plainly.
TRANSIENT_PATTERNS = (
    re.compile(r"Command '[^']*drbdsetup[^']*' did not terminate within \d+ seconds"),
)

# EAGAIN: the drbd tools exit with it when the kernel module is busy with another state change.
TRANSIENT_EXIT_CODES = (11,)
