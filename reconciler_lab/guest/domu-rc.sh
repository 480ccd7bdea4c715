#!/bin/sh
# The lab's domU: mount the replicated XFS (its disk is the DRBD device) and keep writing to it, so that
# the domain is a real user of the replica. Shut down cleanly by xl through busybox init.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do insmod "/modules/$m" 2>/dev/null; done
mkdir -p /mnt
i=0
while [ ! -b /dev/xvda ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
if mount -t xfs /dev/xvda /mnt; then echo "lab-domu: data mounted"; else echo "lab-domu: no data disk"; fi
for s in /dev/xvdb /dev/xvdc /dev/xvdd; do [ -b "$s" ] && mkswap "$s" >/dev/null 2>&1 && swapon "$s"; done
echo "lab-domu: up on $(cat /proc/sys/kernel/hostname)"
