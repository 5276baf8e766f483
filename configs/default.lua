-- ember's default guest: the microVM kernel built by `make guest-linux` (third_party/guest)
-- with the busybox initramfs, 1 vCPU, 256 MiB, an ext4 drive and entropy; console here.
--   build/ember run configs/default.lua          (make run does this)
-- On hardware KVM a busybox shell answers; `poweroff` ends ember with status 0. On an
-- emulating host the kernel boots to /init and ember stops it there (ember.linux).
local linux = ember.linux.dir()
return ember.linux.vm {
  vcpus = 1, memory_mib = 256,
  kernel = linux .. "/vmlinux",
  -- Uncompressed: where guest kernel code is emulated, gunzip at boot costs ~100 s.
  initrd = linux .. "/initramfs.cpio",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off",
  drives = { { id = "data", path = linux .. "/rootfs.ext4", read_only = true } },
  entropy = {},
}
