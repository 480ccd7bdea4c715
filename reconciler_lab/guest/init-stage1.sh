#!/bin/busybox sh
# Stage 1 of a lab node (runs from the initramfs): mount the host's root read-only over 9p, lay a tmpfs
# over it with overlayfs so that the node can write anywhere, add the Xen tools and the kernel's modules,
# then switch root as PID 1 (DRBD runs its handlers as usermode helpers in PID 1's root).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
for m in $(cat /modules.list); do insmod "/modules/$m" || echo "lab-stage1: insmod $m failed"; done
mkdir -p /host /mem /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=none hostroot /host || exec sh
mount -t tmpfs -o size=768m,mode=0755 tmpfs /mem
mkdir -p /mem/upper /mem/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/mem/upper,workdir=/mem/work /newroot || exec sh
XENROOT=$(arg lab.xenroot)
KTREE=$(arg lab.ktree)
KVER=$(uname -r)
cp -a "/host$XENROOT/etc/." /newroot/etc/
cp -a "/host$XENROOT/usr/." /newroot/usr/
mkdir -p "/newroot/lib/modules/$KVER" /newroot/mnt/host
mount -o bind "/host$KTREE/lib/modules/$KVER" "/newroot/lib/modules/$KVER"
mount -o bind /host /newroot/mnt/host
STAGE2=$(arg lab.init)
for d in dev proc sys; do mkdir -p "/newroot/$d"; mount --move "/$d" "/newroot/$d"; done
echo "lab-stage1: switching root"
exec switch_root /newroot /bin/bash "$STAGE2"
