-- The default guest loaded as a bzImage (64-bit boot protocol) instead of the ELF vmlinux.
-- On an emulating host the bzImage's own decompression runs emulated: slower still.
local linux = ember.linux.dir()
return ember.linux.vm {
  vcpus = 1, memory_mib = 256,
  kernel = linux .. "/bzImage",
  initrd = linux .. "/initramfs.cpio.gz",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off",
}
