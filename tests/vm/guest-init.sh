#!/bin/sh
# PID 1 of the test guest (see run-vm.sh): the host's root is the guest's read-only root over 9p, so the guest runs
# the host's own rafs build. Sets up the scratch filesystems, runs /run/out/guest.sh, records its exit code in
# /run/out/exit-code, and powers off.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o mode=755 run /run
mkdir -p /run/out /run/disk /run/tmp /dev/shm
mount -t tmpfs shm /dev/shm
ln -sf /proc/self/fd /dev/fd   # bash process substitution needs it; devtmpfs has no such link
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /run/out
mount -t ext4 /dev/vda /run/disk
ip link set lo up 2>/dev/null
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/run TMPDIR=/run/tmp
export DOTNET_EnableDiagnostics=0
echo "guest: $(uname -r), running /run/out/guest.sh"
/bin/bash /run/out/guest.sh >/run/out/guest.log 2>&1
echo $? >/run/out/exit-code
sync
umount /run/disk 2>/dev/null
echo o >/proc/sysrq-trigger
sleep 5
