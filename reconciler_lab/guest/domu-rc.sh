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
if mount -t xfs /dev/xvda /mnt; then
    echo "lab-domu: data mounted"
    # The write verifier: the longest run 1..N of records this disk holds. Every record a node announced as
    # acknowledged before this boot must be in it; the lab compares N with the announcements it saw.
    # awk reads each file on its own, so a torn last line of one file is never joined to the next file's first.
    mkdir -p /mnt/records
    set -- /mnt/records/*
    have=0
    if [ -e "$1" ]; then
        have=$(awk '/^[0-9]+$/ { seen[$1] = 1 } END { n = 0; while (seen[n + 1]) n++; print n }' "$@")
    fi
    echo "lab-domu: have $have"
    echo $((have + 1)) >/run/next-record
else
    echo "lab-domu: no data disk"
fi
for s in /dev/xvdb /dev/xvdc /dev/xvdd; do [ -b "$s" ] && mkswap "$s" >/dev/null 2>&1 && swapon "$s"; done
echo "lab-domu: up on $(cat /proc/sys/kernel/hostname)"
