#!/bin/bash
# The lab's stand-in for Xen's /etc/xen/scripts/block, for phy: devices only. The stock script forks dozens
# of processes per disk under a shared lock (sharing checks), which takes longer than libxl's hotplug
# timeout on an emulated CPU; this one publishes the device exactly as the stock script's write_dev does.
# What the lab therefore does not exercise: Xen's own refusal to share a device between domains.
set -u
case "$1" in
    add)
        params=$(xenstore-read "$XENBUS_PATH/params") || exit 1
        dev=$(readlink -f "$params")
        if [ ! -b "$dev" ]; then
            xenstore-write "$XENBUS_PATH/hotplug-error" "$params is not a block device" \
                "$XENBUS_PATH/hotplug-status" error
            exit 1
        fi
        major_minor=$(stat -L -c '%t:%T' "$dev")
        xenstore-write "$XENBUS_PATH/physical-device" "$major_minor" \
            "$XENBUS_PATH/physical-device-path" "$dev" "$XENBUS_PATH/hotplug-status" connected
        ;;
    remove)
        ;;
esac
exit 0
