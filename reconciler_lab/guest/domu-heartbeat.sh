#!/bin/sh
# The workload: one line a few seconds, flushed to the replicated disk.
n=0
while :; do
    n=$((n + 1))
    if mountpoint -q /mnt; then echo "beat $n" >>/mnt/heartbeat && sync; fi
    sleep 5
done
