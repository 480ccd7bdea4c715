# Sourced by both stage 2 variants (node-init.sh, node-systemd.sh) as PID 1: what a real dom0's early
# boot and udev would do, reduced to what the lab needs: host name, modules, links, the persistent disk and
# what it holds, LVM. Every step logs to the console.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
export LC_ALL=C
# No udev here: libdevmapper creates the /dev/mapper nodes itself, as udev would on a real node.
export DM_DISABLE_UDEV=1
log() { echo "lab-init: $*"; }
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
NODE=$(arg lab.node)
CONF=/mnt/host$(arg lab.conf)
hostname "$NODE"
log "node $NODE, config $CONF"

mountpoint -q /dev/pts || { mkdir -p /dev/pts; mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts; }
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/xen /run/lvm /var/log/xen /var/lib/xen /var/run/xenstored

for m in virtio_console virtio_net dm_mod dm_mirror crc32c_generic libcrc32c lru_cache drbd xfs \
         xen_privcmd xenfs xen_evtchn xen_gntdev xen_gntalloc xen_blkback xen_netback; do
    modprobe "$m" || log "modprobe $m failed"
done

# Links: the replication link and the management link, told apart by their MAC addresses.
ip link set lo up
for spec in $(cat "$CONF/links"); do   # lines MAC=ADDRESS/PREFIX
    mac=${spec%%=*}; addr=${spec#*=}
    dev=$(ip -o link | awk -v m="$mac" '$0 ~ m {sub(":","",$2); print $2}')
    ip link set "$dev" up && ip addr add "$addr" dev "$dev" && log "link $dev $addr"
done

# The node's persistent disk: what must survive a reboot.
PERSIST=/dev/disk/by-id/virtio-persist
[ -e "$PERSIST" ] || PERSIST=/dev/vdd
blkid "$PERSIST" >/dev/null 2>&1 || mkfs.ext4 -q -L persist "$PERSIST"
mkdir -p /persist && mount "$PERSIST" /persist
mkdir -p /persist/drbd.d /persist/xen /persist/reconciler /persist/etc-reconciler /persist/log /persist/lvm-backup
cp -a /etc/xen/. /persist/xen/
cp "$(dirname "$0")/block-hotplug.sh" /persist/xen/scripts/block
cp "$CONF/global_common.conf" /persist/drbd.d/global_common.conf
mount -o bind /persist/drbd.d /etc/drbd.d
mount -o bind /persist/xen /etc/xen
mkdir -p /var/lib/reconciler /etc/reconciler
mount -o bind /persist/reconciler /var/lib/reconciler
cp "$CONF"/etc-reconciler/* /etc/reconciler/ && chmod 600 /etc/reconciler/peer.key
cp "$CONF/lvm.conf" /etc/lvm/lvm.conf
mkdir -p /var/lib/drbd /run/drbd
# Where the package installs it: the units, the rendered DRBD handlers (split-brain, fence-peer) and the lab
# run /usr/bin/reconciler (without it DRBD's split-brain helper fails and no split brain is ever recorded).
ln -sf "$(arg lab.project)/.venv/bin/reconciler" /usr/bin/reconciler
cp "$CONF/lab-fence-peer" /usr/local/sbin/lab-fence-peer && chmod 755 /usr/local/sbin/lab-fence-peer
cp "$CONF/lab-power-fence" /usr/local/sbin/lab-power-fence && chmod 755 /usr/local/sbin/lab-power-fence
cp "$CONF/lab-migrate-via" /usr/local/sbin/lab-migrate-via && chmod 755 /usr/local/sbin/lab-migrate-via

# LVM without udev: scan and activate what is there (after a reboot the VGs exist).
vgscan --mknodes >/dev/null 2>&1
vgchange -ay >/dev/null 2>&1
dmsetup mknodes

