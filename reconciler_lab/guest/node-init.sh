#!/bin/bash
# Stage 2 of a lab node, PID 1 in the shared root: what systemd and udev would do on a real dom0, reduced
# to what the lab needs. Every step logs to the console; a failure leaves the node up for inspection.
set -u
. "$(dirname "$0")/node-prepare.sh"

# The command agent the lab drives the node through (a virtio-serial port).
python3 -B "$(dirname "$0")/agent.py" >/persist/log/agent.log 2>&1 &
log "agent started"

# Xen's toolstack in dom0.
mount -t xenfs xenfs /proc/xen
/etc/xen/scripts/launch-xenstore && log "xenstored up"
timeout 300 xen-init-dom0 && log "xen-init-dom0 done"
mkdir -p /var/log/xen/console
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest && log "xenconsoled up"
"$(dirname "$0")/console-relay.sh" &
# Live migration's receiving end, as sshd runs the migration key's forced command: one `reconciler
# migrate-receive` (which checks the command and runs `xl migrate-receive`) per connection; lab-migrate-via is
# the sending end. Without systemd the domain it receives stays under this node's PID 1, where `xl create`
# leaves the domains the daemon starts.
busybox nc -ll -p 8002 -e /usr/bin/reconciler migrate-receive -- xl migrate-receive \
    </dev/null >>/persist/log/migrate-receive.log 2>&1 &
log "migration receiver listening"


# The daemon starts at boot when the lab has enabled it, as the systemd unit would.
if [ -e /persist/daemon.enabled ]; then
    "$(dirname "$0")/start-daemon.sh" && log "daemon started"
fi
log "ready"
# PID 1 reaps orphans for ever.
while :; do wait -n 2>/dev/null || sleep 1; done
