#!/bin/bash
# Start `reconciler run` on this node as the systemd unit would: from the environment file, logging to
# the persistent disk, with a command log of the real host seam for the lab's assertions.
set -u
set -a
. /etc/reconciler/reconciler.env
set +a
touch /persist/daemon.enabled
echo "=== start $(date -u +%FT%TZ)" >>/persist/log/daemon.log
setsid /usr/bin/reconciler run $LAB_DAEMON_ARGS </dev/null >>/persist/log/daemon.log 2>&1 &
echo $! >/run/reconciler.pid
