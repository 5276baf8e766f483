-- Debian's stock cloud kernel (linux-image-cloud-amd64, unpacked by `make guest-linux`)
-- with the busybox initramfs plus the kernel's virtio modules, 1 vCPU, 256 MiB.
--   build/ember run configs/debian-cloud.lua
-- This kernel has no command-line virtio-mmio devices: it finds them in ACPI only.
-- On an emulating host (kvm_pvm) it boots very slowly (well over 10 minutes).
local linux = ember.linux.dir()

return ember.linux.vm {
  vcpus = 1,
  memory_mib = 256,
  -- The ELF kernel unpacked from vmlinuz-cloud: a bzImage would first decompress
  -- itself at CPL0, which an emulating host runs one instruction at a time.
  kernel = linux .. "/vmlinux-cloud",
  initrd = linux .. "/initramfs-cloud.cpio",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off",
  drives = { { id = "data", path = linux .. "/rootfs.ext4", read_only = true } },
  entropy = {},
}
