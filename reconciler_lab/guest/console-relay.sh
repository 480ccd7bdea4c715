#!/bin/bash
# The domUs' announcements, copied onto dom0's console (the node's serial port, a file on the lab's host),
# so that the records a domU acknowledged are known outside the node even after it lost power: vm100's
# ("lab-domu: ") and the provisioned vm102's ("lab-prov: ").
# xenconsoled names a domain's log after the name it had when its console appeared: a domain received by a live
# migration writes to guest-NAME--incoming.log. Every log of both is followed, each from its first line.
dir=/var/log/xen/console
followed=" "
while :; do
    for log in "$dir"/guest-vm100.log "$dir"/guest-vm100--*.log "$dir"/guest-vm102.log "$dir"/guest-vm102--*.log; do
        [ -e "$log" ] || continue
        case "$followed" in *" $log "*) continue ;; esac
        followed="$followed$log "
        tail -n +1 -F "$log" 2>/dev/null | while IFS= read -r line; do
            case "$line" in
            *"lab-domu: "* | *"lab-prov: "*) echo "${line%$'\r'}" >/dev/console ;;
            esac
        done &
    done
    sleep 2
done
