#!/bin/bash
# Stage 2 of a lab node that runs systemd as its init (scenario 10): the same preparation as node-init.sh,
# then the shipped units installed where the Debian package puts them, the lab's own services (the agent,
# Xen's toolstack under the unit names the shipped units order themselves after), and systemd exec'd as
# PID 1. The journal is kept on the persistent disk, so a shutdown's record survives it.
set -u
. "$(dirname "$0")/node-prepare.sh"
GUEST=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(arg lab.project)
UNITS=/etc/systemd/system

# A node's own /tmp and /var/tmp: systemd-tmpfiles empties /tmp at boot, and the shared root's (the host's,
# through the overlay) took it over ten minutes on the emulated CPU.
mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp
mount -t tmpfs -o mode=1777,size=64m tmpfs /var/tmp

# systemd sets the host name from /etc/hostname (the shared root's) and needs a machine id of its own.
echo "$NODE" >/etc/hostname
[ -s /persist/machine-id ] || tr -d '-' </proc/sys/kernel/random/uuid >/persist/machine-id
cp /persist/machine-id /etc/machine-id
mkdir -p /persist/journal /var/log/journal && mount -o bind /persist/journal /var/log/journal

# As the package installs them: both units in /lib/systemd/system (node-prepare.sh made /usr/bin/reconciler).
cp "$PROJECT/systemd/reconciler.service" "$PROJECT/systemd/reconciler-shutdown.service" /lib/systemd/system/

# The shared root is this machine's: its own services (databases, timers, NTP, gettys on terminals a PV dom0
# does not have) have no place in a lab node.
for unit in postgresql.service prometheus.service e2scrub_reap.service systemd-timesyncd.service \
            getty.target serial-getty@hvc0.service apt-daily.timer apt-daily-upgrade.timer \
            dpkg-db-backup.timer e2scrub_all.timer fstrim.timer man-db.timer; do
    ln -sf /dev/null "$UNITS/$unit"
done

LAB_ENV="Environment=PATH=$PATH
Environment=LC_ALL=C
Environment=DM_DISABLE_UDEV=1"

cat >"$UNITS/lab-agent.service" <<EOF
[Unit]
Description=The lab's command agent (virtio-serial)
[Service]
$LAB_ENV
ExecStart=/usr/bin/python3 -B $GUEST/agent.py
StandardOutput=append:/persist/log/agent.log
StandardError=inherit
EOF

cat >"$UNITS/xenstored.service" <<EOF
[Unit]
Description=Xen's xenstore daemon
[Service]
Type=oneshot
RemainAfterExit=yes
$LAB_ENV
ExecStartPre=/bin/sh -c 'mountpoint -q /proc/xen || mount -t xenfs xenfs /proc/xen'
ExecStart=/etc/xen/scripts/launch-xenstore
EOF

cat >"$UNITS/xen-init-dom0.service" <<EOF
[Unit]
Description=Xen's dom0 set-up in xenstore
Requires=xenstored.service
After=xenstored.service
[Service]
Type=oneshot
RemainAfterExit=yes
$LAB_ENV
ExecStart=/usr/bin/timeout 300 /usr/lib/xen-4.17/bin/xen-init-dom0
EOF

cat >"$UNITS/xenconsoled.service" <<EOF
[Unit]
Description=Xen's console daemon
Requires=xenstored.service
After=xenstored.service
[Service]
Type=forking
$LAB_ENV
ExecStartPre=/bin/mkdir -p /var/log/xen/console
ExecStart=/usr/sbin/xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest
PIDFile=/run/xen/xenconsoled.pid
EOF

cat >"$UNITS/lab-console-relay.service" <<EOF
[Unit]
Description=Copy the domU's announcements onto dom0's console
After=xenconsoled.service
[Service]
ExecStart=$GUEST/console-relay.sh
EOF

cat >"$UNITS/lab-ready.service" <<EOF
[Unit]
Description=Tell the lab this node is up
After=lab-agent.service xen-init-dom0.service xenconsoled.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo "lab-init: ready (systemd)" >/dev/console'
EOF

mkdir -p "$UNITS/multi-user.target.wants"
for unit in lab-agent.service xenstored.service xen-init-dom0.service xenconsoled.service lab-console-relay.service \
        lab-ready.service; do
    ln -sf "$UNITS/$unit" "$UNITS/multi-user.target.wants/$unit"
done
for unit in reconciler.service reconciler-shutdown.service; do
    ln -sf "/lib/systemd/system/$unit" "$UNITS/multi-user.target.wants/$unit"
done

log "exec systemd"
exec /lib/systemd/systemd --unit=multi-user.target
