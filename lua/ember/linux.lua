-- ember.linux: machine definitions for the Linux guests ember builds (third_party/guest),
-- and what to do on a host whose KVM emulates guest kernel mode.
local M = {}

--- Where `make guest-linux` left the guest: $EMBER_LINUX_DIR, else build/linux beside
--- the ember binary.
function M.dir()
  return os.getenv("EMBER_LINUX_DIR") or (ember.guest.dir:gsub("/[^/]*$", "") .. "/linux")
end

--- A definition for a Linux guest. `def` is an ember.vm table. On an emulating host
--- (ember.host.emulating) ember adds the command-line words that host needs (see
--- include/ember/emulate.h), and this stops the VM, saying why, once the kernel runs
--- /init: user space cannot run on such a host, and a panic dump should not be the last
--- word.
function M.vm(def)
  local emulating = ember.host.emulating
  if emulating then
    io.stderr:write("ember: this host's KVM emulates guest kernel mode (kvm_pvm): Linux "
      .. "takes minutes to boot and its user space cannot run; ember stops the guest at /init\n")
  end
  local vm = ember.vm(def)
  if emulating then
    vm:on("console", "Run /init as init process", function(v)
      io.stderr:write("\nember: the kernel booted to /init; a shell needs hardware KVM "
        .. "(guest system calls do not reach the guest kernel on this host). Stopping.\n")
      v:stop()
    end)
  end
  return vm
end

return M
