-- The default guest with 2 vCPUs and 512 MiB, booted from the ext4 image as root
-- (root=/dev/vda, read-only) instead of the initramfs.
local linux = ember.linux.dir()
return ember.linux.vm {
  vcpus = 2, memory_mib = 512,
  kernel = linux .. "/vmlinux",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off init=/init",
  drives = { { id = "rootfs", path = linux .. "/rootfs.ext4", read_only = true, root = true } },
  entropy = {},
  balloon = { amount_mib = 0, deflate_on_oom = true, stats_polling_interval_s = 5 },
}
