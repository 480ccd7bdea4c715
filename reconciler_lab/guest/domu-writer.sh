#!/bin/sh
# The workload, and the source of the write verifier: numbered records appended to the replicated disk, each
# made durable (fsync) before its number is announced on the console as acknowledged. Whatever node runs the
# domain next must hold every announced record (protocol C's promise); /etc/rc checks that at each boot.
# A restarted writer starts a new file, so a record torn by a power loss is never appended to. The files live
# in a directory that exists only on the replicated disk: once shutdown has unmounted it, a write fails instead
# of landing in the initramfs (a mount check before the write would race with the umount).
n=$(cat /run/next-record 2>/dev/null || echo 1)
file=/mnt/records/from-$n-$$
while :; do
    if printf '%d\n' "$n" | dd of="$file" oflag=append conv=notrunc,fsync 2>/dev/null; then
        echo "lab-domu: ack $n" >/dev/console
        n=$((n + 1))
        echo "$n" >/run/next-record
    fi
    sleep 1
done
