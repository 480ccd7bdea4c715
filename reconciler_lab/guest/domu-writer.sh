#!/bin/sh
# The workload, and the source of the write verifier: numbered records appended to the replicated disk, each
# made durable (fsync) before its number is announced on the console as acknowledged. Whatever node runs the
# domain next must hold every announced record (protocol C's promise); /etc/rc checks that at each boot.
# A restarted writer starts a new file, so a record torn by a power loss is never appended to.
n=$(cat /run/next-record 2>/dev/null || echo 1)
file=/mnt/records.$n
while :; do
    if grep -q " /mnt " /proc/mounts && printf '%d\n' "$n" | dd of="$file" oflag=append conv=notrunc,fsync 2>/dev/null; then
        echo "lab-domu: ack $n" >/dev/console
        n=$((n + 1))
        echo "$n" >/run/next-record
    fi
    sleep 1
done
