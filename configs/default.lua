-- ember's default guest: the microVM kernel (third_party/guest, `make guest-linux`)
-- with the busybox initramfs, 1 vCPU, 256 MiB, console on stdio.
--   build/ember run configs/default.lua
-- $EMBER_LINUX_DIR overrides where the guest files are (default: build/linux,
-- beside the ember binary). On an emulating host (kvm_pvm) ember appends the
-- words that host needs to the command line itself (include/ember/emulate.h).
local linux = os.getenv("EMBER_LINUX_DIR") or (ember.guest.dir:gsub("/[^/]*$", "") .. "/linux")

return ember.vm {
  vcpus = 1,
  memory_mib = 256,
  kernel = linux .. "/vmlinux",
  initrd = linux .. "/initramfs.cpio.gz",
  -- acpi=off until ember writes ACPI tables; virtio_mmio.device= words follow
  -- once ember has virtio-mmio devices.
  cmdline = "console=ttyS0 reboot=k panic=1 acpi=off",
}
