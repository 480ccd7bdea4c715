#!/bin/bash
# The domU's announcements, copied onto dom0's console (the node's serial port, a file on the lab's host),
# so that the records a domU acknowledged are known outside the node even after it lost power.
tail -n 0 -F /var/log/xen/console/guest-vm100.log 2>/dev/null | while IFS= read -r line; do
    case "$line" in
    *"lab-domu: "*) echo "${line%$'\r'}" >/dev/console ;;
    esac
done
