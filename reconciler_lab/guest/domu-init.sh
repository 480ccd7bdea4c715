#!/bin/busybox sh
# The lab's domU initramfs. By default busybox init runs the write verifier (/etc/rc, /etc/writer). With
# `lab.root=provisioned` on the kernel's command line the root file system is the VM's own disk, as the
# one-time provisioning filled it (scenario 17): mount it and switch to its /sbin/init.
/bin/busybox --install -s /bin
mount -t proc proc /proc
if grep -qw lab.root=provisioned /proc/cmdline; then
    mount -t devtmpfs devtmpfs /dev
    for m in $(cat /modules.list); do insmod "/modules/$m" 2>/dev/null; done
    mkdir -p /newroot
    i=0
    while [ ! -b /dev/xvda ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
    if mount -t xfs /dev/xvda /newroot && [ -x /newroot/sbin/init ]; then
        umount /dev
        umount /proc
        exec switch_root /newroot /sbin/init
    fi
    echo "lab-domu: no provisioned root on /dev/xvda"
    umount /newroot 2>/dev/null
    umount /dev
fi
umount /proc
exec /bin/busybox init
