# ember: one non-recursive Makefile. `make` builds ember and the test guest into build/;
# `make test` runs unit and integration tests, normal and under ASan+UBSan.
BUILD ?= build
SAN_BUILD ?= build-san
CC ?= cc
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

DEB_PACKAGES := build-essential pkg-config liblua5.4-dev libev-dev libseccomp-dev \
	libcjson-dev libcmocka-dev libhttp-parser-dev libreadline-dev python3 acpica-tools \
	liburing-dev
PKG_LIBS := lua5.4 libseccomp libcjson

WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes -Wshadow -Wvla \
	-Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(CFLAGS) -MMD -MP \
	$(shell pkg-config --cflags $(PKG_LIBS) 2>/dev/null)
# Lua, libev, libseccomp, http-parser, readline (with its terminfo) and liburing are linked
# statically: each shared object costs every ember process (a restore is one) its mapping, relocation
# and symbol lookups at start and its own resident pages (README, Benchmarks). Debian
# ships no static cJSON; it and glibc stay shared.
STATIC_LIBS := -llua5.4 -lev -lseccomp -lhttp_parser -lreadline -ltinfo -luring
LDLIBS = -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic -lcjson -lpthread -lm -ldl
# Tests link liburing statically too: Debian's liburing.so.2 (2.3) does not export
# io_uring_register_restrictions and io_uring_enable_rings, which block_uring.c calls.
URING_LIB := -Wl,-Bstatic -luring -Wl,-Bdynamic
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

EMBER_SRCS := \
	src/main.c \
	src/cli/options.c \
	src/util/crc64.c \
	src/util/log.c \
	src/util/log_ratelimit.c \
	src/util/rate_limiter.c \
	src/util/term_queries.c \
	src/util/thread.c \
	src/util/unix_socket.c \
	src/kvm/bus.c \
	src/kvm/guest_mem.c \
	src/kvm/vcpu.c \
	src/kvm/vm_fd.c \
	src/arch/x86_64/acpi.c \
	src/arch/x86_64/aml.c \
	src/arch/x86_64/boot_tables.c \
	src/arch/x86_64/cpuid.c \
	src/arch/x86_64/cpu_template.c src/arch/x86_64/cpu_template_json.c \
	src/arch/x86_64/cpu_static.c src/arch/x86_64/cpu_static.S \
	src/arch/x86_64/kernel_loader.c \
	src/arch/x86_64/emulate.c src/arch/x86_64/emulate_decode.c \
	src/arch/x86_64/machine.c \
	src/arch/x86_64/msr.c \
	src/arch/x86_64/regs.c \
	src/arch/x86_64/state.c \
	src/arch/x86_64/state_items.c \
	src/arch/x86_64/state_parse.c \
	src/arch/x86_64/state_vm.c \
	src/arch/x86_64/zero_page.c \
	src/devices/legacy/boot_timer.c \
	src/devices/legacy/i8042.c \
	src/devices/legacy/serial.c \
	src/devices/legacy/sleep_ctl.c \
	src/devices/virtio/mmio.c \
	src/devices/virtio/mmio_notify.c \
	src/devices/virtio/mmio_persist.c \
	src/devices/virtio/mmio_regs.c \
	src/devices/virtio/queue.c \
	src/devices/block/block.c \
	src/devices/block/block_persist.c \
	src/devices/block/block_req.c \
	src/devices/block/block_update.c \
	src/devices/block/block_worker.c \
	src/devices/block/block_uring.c \
	src/devices/block/block_uring_probe.c \
	src/devices/block/block_file.c \
	src/devices/rng/rng.c \
	src/devices/mem/mem.c \
	src/devices/mem/mem_config.c \
	src/devices/mem/mem_persist.c \
	src/devices/mem/mem_slots.c \
	src/devices/balloon/balloon.c \
	src/devices/balloon/balloon_parse.c \
	src/devices/balloon/balloon_persist.c \
	src/devices/balloon/balloon_queues.c \
	src/devices/balloon/balloon_memory.c \
	src/devices/pmem/pmem.c \
	src/devices/pmem/pmem_file.c \
	src/devices/pmem/pmem_flush.c \
	src/devices/pmem/pmem_persist.c \
	src/devices/pmem/pmem_req.c \
	src/devices/net/net.c \
	src/devices/net/net_queues.c \
	src/devices/net/net_persist.c \
	src/devices/net/net_mmds.c \
	src/devices/net/net_offload.c \
	src/devices/net/net_rx.c \
	src/devices/mmds/frame.c \
	src/devices/mmds/http.c \
	src/devices/mmds/imds.c \
	src/devices/mmds/stack.c \
	src/devices/mmds/store.c \
	src/devices/mmds/tcp.c \
	src/devices/mmds/token.c \
	src/devices/vsock/vsock.c \
	src/devices/vsock/vsock_proto.c \
	src/devices/net/tap.c \
	src/devices/vsock/vsock_uds.c \
	src/devices/vsock/vsock_spares.c \
	src/devices/vsock/vsock_packets.c \
	src/vmm/config.c \
	src/vmm/console.c \
	src/vmm/device_thread.c \
	src/vmm/snapshot.c \
	src/vmm/snapshot_check.c \
	src/vmm/snapshot_config.c \
	src/vmm/snapshot_describe.c \
	src/vmm/snapshot_restore.c \
	src/vmm/snapshot_sections.c \
	src/vmm/snapshot_cpu.c \
	src/vmm/vm.c \
	src/vmm/vm_build.c \
	src/vmm/vm_build_boot.c \
	src/vmm/vm_build_restore.c \
	src/vmm/vm_lifecycle.c \
	src/vmm/vm_persist.c \
	src/vmm/vm_recipe.c \
	src/vmm/vm_shell.c \
	src/vmm/vm_devices.c \
	src/vmm/vm_mem_hotplug.c \
	src/vmm/vm_inspect.c \
	src/vmm/vm_metrics.c \
	src/security/seccomp.c \
	src/security/seccomp_rules.c \
	src/security/seccomp_file.c \
	src/security/seccomp_file_build.c \
	src/security/seccomp_file_check.c \
	src/security/seccomp_file_json.c \
	src/snapshot/memory_file.c \
	src/snapshot/page_scan.c \
	src/snapshot/publish.c \
	src/snapshot/snapshot_id.c \
	src/snapshot/state_file.c \
	src/snapshot/state_file_read.c \
	src/snapshot/uffd.c \
	src/snapshot/uffd_handshake.c \
	src/snapshot/uffd_watch.c \
	src/lua/result.c \
	src/lua/task.c \
	src/lua/events.c \
	src/lua/host.c \
	src/lua/host_wait.c \
	src/lua/pattern_span.c \
	src/lua/lvm.c \
	src/lua/lvm_lifecycle.c \
	src/lua/lvm_config.c \
	src/lua/lvm_cpu_template.c \
	src/lua/lvm_devices.c \
	src/lua/lvm_machine.c \
	src/lua/lvm_restore.c \
	src/lua/http_client.c \
	src/lua/lvm_inspect.c \
	src/lua/repl.c \
	src/lua/module.c \
	src/lua/embedded.S \
	src/util/metrics.c \
	src/api/api.c \
	src/api/config_file.c \
	src/api/conn.c \
	src/api/http.c \
	src/api/json.c \
	src/api/json_source.c \
	src/api/json_syntax.c \
	src/api/route_actions.c \
	src/api/route_balloon.c \
	src/api/route_hotplug.c \
	src/api/route_entropy.c \
	src/api/route_logger.c \
	src/api/route_mmds.c \
	src/api/route_network.c \
	src/api/route_serial.c \
	src/api/route_shared.c \
	src/api/route_vsock.c \
	src/api/route_drives.c \
	src/api/route_pmem.c \
	src/api/route_machine.c src/api/route_cpu_config.c \
	src/api/router.c \
	src/api/run.c \
	src/api/server.c

LUA_SRCS := $(wildcard lua/ember/*.lua)
CPU_TEMPLATE_DATA := $(wildcard configs/cpu-templates/*.json)

# The state file container: every module that saves or restores state links it.
STATE_FILE_SRCS := src/snapshot/state_file.c src/snapshot/state_file_read.c src/util/crc64.c

# Unit tests: one binary per module, linked with only that module and what it needs.
# Fake guest RAM on the heap, for the tests that play a guest over guest_mem.
GUEST_MEM_FIXTURE := tests/unit/guest_mem_fixture.c
UNIT_TESTS := jailer_args jailer_cgroup jailer_elf bus config cpuid cpu_template kernel_loader zero_page boot_tables serial state_file snapshot_id snapshot_check page_scan seccomp acpi uffd api_http api_json api_router virtio_block virtio_balloon virtq rate_limiter virtio_mmio virtio_rng virtio_net vsock_packets virtio_pmem virtio_mem emulate mmds memory_file log_ratelimit lua_pattern seccomp_file cli_options term_queries working_set vm_persist thread
test_bus_SRCS := src/kvm/bus.c
test_emulate_SRCS := src/arch/x86_64/emulate.c src/arch/x86_64/emulate_decode.c src/kvm/guest_mem.c src/util/log.c
test_config_SRCS := src/vmm/config.c src/devices/pmem/pmem_file.c src/devices/mem/mem_config.c
test_cpuid_SRCS := src/arch/x86_64/cpuid.c
test_cpu_template_SRCS := src/arch/x86_64/cpu_template.c src/arch/x86_64/cpu_template_json.c \
	src/arch/x86_64/cpuid.c
test_kernel_loader_SRCS := src/arch/x86_64/kernel_loader.c src/kvm/guest_mem.c $(GUEST_MEM_FIXTURE)
test_zero_page_SRCS := src/arch/x86_64/zero_page.c src/kvm/guest_mem.c $(GUEST_MEM_FIXTURE)
test_boot_tables_SRCS := src/arch/x86_64/boot_tables.c src/kvm/guest_mem.c $(GUEST_MEM_FIXTURE)
test_serial_SRCS := src/devices/legacy/serial.c src/kvm/bus.c $(STATE_FILE_SRCS)
# The devices' persist table, on the real legacy devices and fake virtio ones.
test_vm_persist_SRCS := src/vmm/vm_persist.c src/devices/legacy/serial.c \
	src/devices/legacy/i8042.c src/kvm/bus.c $(STATE_FILE_SRCS)
test_state_file_SRCS := $(STATE_FILE_SRCS) src/snapshot/publish.c
test_snapshot_id_SRCS := src/snapshot/snapshot_id.c $(STATE_FILE_SRCS)
# Restore's early checks: the section loaders, the configuration checks, the memory file's
# id, and the x86_64 state parser, all without KVM.
SNAPSHOT_CHECK_SRCS := src/vmm/snapshot_check.c src/vmm/snapshot_sections.c \
	src/vmm/snapshot_config.c src/vmm/config.c src/devices/pmem/pmem_file.c src/kvm/guest_mem.c \
	src/devices/mem/mem_config.c \
	src/snapshot/snapshot_id.c src/snapshot/memory_file.c src/snapshot/page_scan.c \
	src/snapshot/publish.c \
	src/arch/x86_64/state_parse.c src/arch/x86_64/state_items.c src/arch/x86_64/cpuid.c \
	src/util/log.c $(STATE_FILE_SRCS)
test_snapshot_check_SRCS := $(SNAPSHOT_CHECK_SRCS)
test_page_scan_SRCS := src/snapshot/page_scan.c
test_memory_file_SRCS := src/snapshot/memory_file.c src/snapshot/page_scan.c \
	src/snapshot/publish.c \
	src/snapshot/snapshot_id.c src/kvm/guest_mem.c src/util/log.c $(STATE_FILE_SRCS) \
	$(GUEST_MEM_FIXTURE)
test_log_ratelimit_SRCS := src/util/log_ratelimit.c src/util/log.c
test_cli_options_SRCS := src/cli/options.c src/util/log.c
test_term_queries_SRCS := src/util/term_queries.c
test_lua_pattern_SRCS := src/lua/pattern_span.c
# --seccomp-filter FILE: the seccompiler JSON parser and its libseccomp filter builder.
SECCOMP_FILE_SRCS := src/security/seccomp_file.c src/security/seccomp_file_build.c \
	src/security/seccomp_file_check.c src/security/seccomp_file_json.c
test_seccomp_file_SRCS := $(SECCOMP_FILE_SRCS)
test_seccomp_SRCS := src/security/seccomp.c src/security/seccomp_rules.c $(SECCOMP_FILE_SRCS) \
	src/util/log.c
test_acpi_SRCS := src/arch/x86_64/acpi.c src/arch/x86_64/aml.c src/kvm/guest_mem.c $(GUEST_MEM_FIXTURE)
test_uffd_SRCS := src/snapshot/uffd_handshake.c
test_api_http_SRCS := src/api/http.c
test_api_json_SRCS := src/api/json.c src/api/json_source.c src/api/json_syntax.c
test_api_router_SRCS := src/api/api.c src/api/config_file.c src/api/json.c src/api/json_source.c \
	src/api/json_syntax.c \
	src/api/route_actions.c src/api/route_balloon.c src/api/route_entropy.c src/api/route_logger.c \
	src/api/route_mmds.c src/api/route_network.c src/api/route_serial.c src/api/route_shared.c src/api/route_vsock.c src/api/route_drives.c \
	src/api/route_pmem.c src/devices/pmem/pmem_file.c \
	src/api/route_machine.c src/api/route_cpu_config.c src/api/router.c src/util/log.c \
	src/util/metrics.c src/arch/x86_64/cpu_template.c src/arch/x86_64/cpu_template_json.c \
	src/arch/x86_64/cpuid.c \
	src/vmm/vm_metrics.c \
	src/vmm/config.c src/util/rate_limiter.c src/devices/balloon/balloon_parse.c \
	src/kvm/guest_mem.c src/devices/mmds/store.c tests/unit/fake_vm.c \
	src/api/route_hotplug.c src/devices/mem/mem_config.c
test_api_router_SRCS += src/devices/block/block_uring_probe.c
test_api_router_LIBS := $(URING_LIB)
test_virtio_block_SRCS := src/devices/block/block.c src/devices/block/block_req.c \
	src/devices/block/block_persist.c src/devices/block/block_update.c \
	src/devices/block/block_worker.c src/devices/block/block_uring.c \
	src/devices/block/block_uring_probe.c src/util/thread.c \
	src/devices/virtio/queue.c src/devices/block/block_file.c src/util/rate_limiter.c \
	src/kvm/guest_mem.c src/util/log.c src/util/log_ratelimit.c $(STATE_FILE_SRCS) \
	tests/unit/fake_block_env.c $(GUEST_MEM_FIXTURE)
test_virtio_block_SRCS += tests/unit/fake_seccomp.c
test_virtio_block_LIBS := $(URING_LIB)
test_virtio_balloon_SRCS := src/devices/balloon/balloon.c src/devices/balloon/balloon_parse.c \
	src/devices/balloon/balloon_persist.c src/devices/balloon/balloon_queues.c \
	src/devices/balloon/balloon_memory.c \
	src/devices/virtio/queue.c src/kvm/guest_mem.c $(STATE_FILE_SRCS) \
	src/util/log.c src/util/log_ratelimit.c
test_virtq_SRCS := src/devices/virtio/queue.c src/kvm/guest_mem.c $(GUEST_MEM_FIXTURE)
test_rate_limiter_SRCS := src/util/rate_limiter.c
test_thread_SRCS := src/util/thread.c
test_virtio_mmio_SRCS := src/devices/virtio/mmio.c src/devices/virtio/mmio_notify.c src/devices/virtio/mmio_regs.c \
	src/devices/virtio/mmio_persist.c src/devices/virtio/queue.c src/kvm/bus.c \
	src/kvm/guest_mem.c $(STATE_FILE_SRCS) src/util/log.c src/util/log_ratelimit.c \
	tests/unit/virtio_rig.c $(GUEST_MEM_FIXTURE)
test_virtio_rng_SRCS := $(test_virtio_mmio_SRCS) src/devices/rng/rng.c \
	src/util/rate_limiter.c
test_virtio_pmem_SRCS := $(test_virtio_mmio_SRCS) src/devices/pmem/pmem.c \
	src/devices/pmem/pmem_file.c src/devices/pmem/pmem_flush.c \
	src/devices/pmem/pmem_persist.c src/devices/pmem/pmem_req.c src/kvm/vm_fd.c \
	src/util/rate_limiter.c src/util/thread.c tests/unit/fake_seccomp.c
test_virtio_mem_SRCS := $(test_virtio_mmio_SRCS) src/devices/mem/mem.c \
	src/devices/mem/mem_config.c src/devices/mem/mem_persist.c src/devices/mem/mem_slots.c \
	src/devices/balloon/balloon_memory.c src/kvm/vm_fd.c
MMDS_SRCS := src/devices/mmds/frame.c src/devices/mmds/http.c src/devices/mmds/imds.c \
	src/devices/mmds/stack.c src/devices/mmds/store.c src/devices/mmds/tcp.c \
	src/devices/mmds/token.c
test_mmds_SRCS := $(MMDS_SRCS)
test_virtio_net_SRCS := src/devices/net/net.c src/devices/net/net_queues.c \
	src/devices/net/net_persist.c \
	src/devices/net/net_mmds.c src/devices/net/net_offload.c src/devices/net/net_rx.c \
	src/devices/net/tap.c src/util/rate_limiter.c $(MMDS_SRCS) \
	src/devices/virtio/queue.c src/kvm/guest_mem.c src/util/log.c src/util/log_ratelimit.c $(STATE_FILE_SRCS) \
	tests/unit/netvsock_rig.c $(GUEST_MEM_FIXTURE)
test_vsock_packets_SRCS := src/devices/vsock/vsock.c src/devices/vsock/vsock_proto.c \
	src/devices/vsock/vsock_uds.c src/devices/vsock/vsock_spares.c src/devices/vsock/vsock_packets.c src/devices/virtio/queue.c \
	src/util/unix_socket.c \
	src/kvm/guest_mem.c src/util/log.c src/util/log_ratelimit.c \
	$(STATE_FILE_SRCS) tests/unit/netvsock_rig.c $(GUEST_MEM_FIXTURE)

# ember-jailer (tools/jailer/): Firecracker's jailer command line. Its tests need
# -Itools/jailer for the private header.
JAILER_SRCS := \
	tools/jailer/args.c \
	tools/jailer/cgroup.c \
	tools/jailer/cgroup_path.c \
	tools/jailer/chroot.c \
	tools/jailer/elf.c \
	tools/jailer/libs.c \
	tools/jailer/main.c \
	tools/jailer/process.c
test_jailer_args_SRCS := tools/jailer/args.c tools/jailer/cgroup_path.c
test_jailer_cgroup_SRCS := tools/jailer/cgroup_path.c
test_jailer_elf_SRCS := tools/jailer/elf.c
test_working_set_SRCS := tools/working_set.c
# The loader's library directory, for finding what the VMM needs (libs.c).
JAIL_MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

.PHONY: all test test-floors test-unit test-integration test-linux-stock test-san soak bench demo deps clean
all: $(BUILD)/ember $(BUILD)/ember-uffd $(BUILD)/ember-jailer guest

define ember_build # $(1) = build dir, $(2) = extra flags
$(1)/ember: $$(patsubst %,$(1)/%.o,$$(EMBER_SRCS))
	@echo "  LD      $$@"
	$$(Q)$$(CC) $(2) -o $$@ $$^ $$(LDLIBS)

$(1)/%.c.o: %.c
	@mkdir -p $$(dir $$@)
	@echo "  CC      $$@"
	$$(Q)$$(CC) $$(ALL_CFLAGS) $(2) -c -o $$@ $$<

# ember's seccomp filters go in as BPF compiled here (tools/seccomp_bpf_gen.c), by a
# generator built with this tree's flags: the sanitizer build's lists differ.
$(1)/tools/seccomp-bpf-gen: $(1)/tools/seccomp_bpf_gen.c.o $(1)/src/security/seccomp_rules.c.o
	@echo "  LD      $$@"
	$$(Q)$$(CC) $(2) -o $$@ $$^ -Wl,-Bstatic -lseccomp -Wl,-Bdynamic

$(1)/gen/seccomp_bpf.inc: $(1)/tools/seccomp-bpf-gen
	@mkdir -p $$(dir $$@)
	@echo "  GEN     $$@"
	$$(Q)$$< > $$@.tmp && mv $$@.tmp $$@

$(1)/src/security/seccomp.c.o: $(1)/gen/seccomp_bpf.inc
$(1)/src/security/seccomp.c.o: ALL_CFLAGS += -I$(1)/gen

# The Lua side goes in as bytecode (tools/lua_precompile.c), found by .incbin in $(1).
$(1)/lua/ember/%.luac: lua/ember/%.lua $(BUILD)/tools/lua-precompile
	@mkdir -p $$(dir $$@)
	@echo "  LUAC    $$@"
	$$(Q)$(BUILD)/tools/lua-precompile $$< $$* $$@

$(1)/%.S.o: %.S src/util/embed.inc $$(patsubst %.lua,$(1)/%.luac,$$(LUA_SRCS)) \
		$$(CPU_TEMPLATE_DATA)
	@mkdir -p $$(dir $$@)
	@echo "  AS      $$@"
	$$(Q)$$(CC) $$(ALL_CFLAGS) $(2) -Wa,-I$(1) -Wa,-I$$(CURDIR) -c -o $$@ $$<

endef

define unit_test # $(1) = build dir, $(2) = module, $(3) = extra flags
$(1)/tests/unit/test_$(2): $(1)/tests/unit/test_$(2).c.o $(patsubst %,$(1)/%.o,$(test_$(2)_SRCS))
	@echo "  LD      $$@"
	$$(Q)$$(CC) $(3) -o $$@ $$^ $$(CMOCKA_LIBS) $$(test_$(2)_LIBS) -lpthread
endef

CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)
.SECONDARY:
$(eval $(call ember_build,$(BUILD),))
$(eval $(call ember_build,$(SAN_BUILD),$(SAN_FLAGS)))
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test,$(BUILD),$(t),)))
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test,$(SAN_BUILD),$(t),$(SAN_FLAGS))))
$(BUILD)/tests/unit/test_uffd $(SAN_BUILD)/tests/unit/test_uffd: CMOCKA_LIBS += -lcjson
$(BUILD)/tests/unit/test_cpu_template $(SAN_BUILD)/tests/unit/test_cpu_template: \
	CMOCKA_LIBS += -lcjson
$(BUILD)/tests/unit/test_seccomp $(SAN_BUILD)/tests/unit/test_seccomp: CMOCKA_LIBS += -lseccomp -lcjson
$(BUILD)/tests/unit/test_seccomp_file $(SAN_BUILD)/tests/unit/test_seccomp_file: \
	CMOCKA_LIBS += -lseccomp -lcjson
$(BUILD)/tests/unit/test_api_http $(SAN_BUILD)/tests/unit/test_api_http: CMOCKA_LIBS += -lhttp_parser
$(BUILD)/tests/unit/test_api_json $(SAN_BUILD)/tests/unit/test_api_json: CMOCKA_LIBS += -lcjson -lm
$(BUILD)/tests/unit/test_api_router $(SAN_BUILD)/tests/unit/test_api_router: \
	CMOCKA_LIBS += -lcjson -lev -lm
$(BUILD)/tests/unit/test_virtio_mmio $(SAN_BUILD)/tests/unit/test_virtio_mmio \
	$(BUILD)/tests/unit/test_virtio_rng $(SAN_BUILD)/tests/unit/test_virtio_rng \
	$(BUILD)/tests/unit/test_virtio_pmem $(SAN_BUILD)/tests/unit/test_virtio_pmem \
	$(BUILD)/tests/unit/test_virtio_mem $(SAN_BUILD)/tests/unit/test_virtio_mem: \
	CMOCKA_LIBS += -lev
$(BUILD)/tests/unit/test_virtio_balloon $(SAN_BUILD)/tests/unit/test_virtio_balloon: \
	CMOCKA_LIBS += -lev
$(BUILD)/tests/unit/test_virtio_net $(SAN_BUILD)/tests/unit/test_virtio_net \
	$(BUILD)/tests/unit/test_vsock_packets $(SAN_BUILD)/tests/unit/test_vsock_packets: \
	CMOCKA_LIBS += -lev
$(BUILD)/tests/unit/test_virtio_net $(SAN_BUILD)/tests/unit/test_virtio_net \
	$(BUILD)/tests/unit/test_mmds $(SAN_BUILD)/tests/unit/test_mmds: \
	CMOCKA_LIBS += -lcjson -lhttp_parser

# ember-uffd: the reference page-fault handler for the Uffd memory backend.
$(BUILD)/ember-uffd: $(patsubst %,$(BUILD)/%.o,tools/ember-uffd.c tools/uffd_serve.c tools/working_set.c \
	src/snapshot/uffd_handshake.c src/snapshot/snapshot_id.c $(STATE_FILE_SRCS))
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $^ -lcjson

$(BUILD)/tools/lua-precompile: $(BUILD)/tools/lua_precompile.c.o
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $^ -Wl,-Bstatic -llua5.4 -Wl,-Bdynamic -lm

$(BUILD)/ember-jailer: $(patsubst %,$(BUILD)/%.o,$(JAILER_SRCS))
	@echo "  LD      $@"
	$(Q)$(CC) -o $@ $^
$(BUILD)/tools/jailer/libs.c.o: ALL_CFLAGS += \
	$(if $(JAIL_MULTIARCH),-DJAIL_MULTIARCH='"$(JAIL_MULTIARCH)"')
$(foreach b,$(BUILD) $(SAN_BUILD),$(foreach t,args cgroup elf,\
	$(b)/tests/unit/test_jailer_$(t).c.o)): ALL_CFLAGS += -Itools/jailer
$(foreach b,$(BUILD) $(SAN_BUILD),$(b)/tests/unit/test_working_set.c.o): ALL_CFLAGS += -Itools

include tests/guest/guest.mk
include third_party/guest/guest-linux.mk
.PHONY: guest
guest: $(GUEST_ELF)

UNIT_BINS = $(patsubst %,$(1)/tests/unit/test_%,$(UNIT_TESTS))

# The include floors (docs/ARCHITECTURE.md "Floors"): no include from a lower floor to a
# higher one; and no circle of calls between files, read from the built objects. Each
# --self-test plants a fault and expects it caught. Before the unit tests.
test-floors: $(BUILD)/ember $(BUILD)/ember-uffd $(BUILD)/ember-jailer
	$(Q)python3 tests/house/floors.py
	$(Q)python3 tests/house/floors.py --self-test
	$(Q)python3 tests/house/circles.py $(BUILD)
	$(Q)python3 tests/house/circles.py --self-test
	$(Q)sh tests/house/format.sh

test-unit: test-floors $(call UNIT_BINS,$(BUILD))
	$(Q)for t in $(call UNIT_BINS,$(BUILD)); do $$t || exit 1; done

# KVM work runs where KVM works: directly on hardware KVM, in the KVM sandbox
# (tests/sandbox/: QEMU TCG with SVM, kvm_amd inside) on a host with none or an emulating
# one. EMBER_SANDBOX=auto|always|never overrides the choice.
WITH_KVM := python3 tests/sandbox/sandbox.py with-kvm --
WITH_KVM_TERMINAL := python3 tests/sandbox/sandbox.py with-kvm -i --

test-integration: $(BUILD)/ember guest
	$(Q)$(WITH_KVM) python3 tests/integration/run.py --ember $(BUILD)/ember

# Debian's stock cloud kernel, booted once (tens of minutes on an emulating host, so not
# part of `make test`; README "Linux guests").
test-linux-stock: $(BUILD)/ember guest guest-linux
	$(Q)EMBER_STOCK_LINUX=1 $(WITH_KVM) python3 tests/integration/run.py \
		--ember $(BUILD)/ember -k linux_stock

# ASan + UBSan: the same tests against the sanitizer build.
test-san: $(call UNIT_BINS,$(SAN_BUILD)) $(SAN_BUILD)/ember guest
	$(Q)for t in $(call UNIT_BINS,$(SAN_BUILD)); do $$t || exit 1; done
	$(Q)ASAN_OPTIONS=detect_leaks=1 EMBER_GUEST_DIR=$(CURDIR)/$(BUILD)/guest \
		$(WITH_KVM) python3 tests/integration/run.py --ember $(SAN_BUILD)/ember --sanitizer

test: test-floors test-unit test-integration test-san test-fuzz-corpus

# The long runs of snapshot integrity (the suite runs them short): 1000 snapshot/restore
# cycles, 100 random kills of snapshot writers and of diff + merge writers, a Linux guest's
# files through 50 diffs merged and restored. About an hour in the KVM sandbox.
SOAK_TESTS := snapshot_soak,killed_at_random_points,linux_files_survive
soak: $(BUILD)/ember $(BUILD)/ember-uffd guest guest-linux
	$(Q)EMBER_SOAK_CYCLES=1000 EMBER_KILL_POINTS=100 EMBER_LINUX_SOAK_CYCLES=50 $(WITH_KVM) python3 \
		tests/integration/run.py --ember $(BUILD)/ember -k $(SOAK_TESTS)

bench: $(BUILD)/ember guest
	$(Q)$(WITH_KVM) python3 tests/bench/bench.py --ember $(BUILD)/ember

demo: $(BUILD)/ember guest
	$(Q)$(WITH_KVM) $(BUILD)/ember run configs/demo-clones.lua

# QEMU for the KVM sandbox, without the firmware and UI packages it recommends.
SANDBOX_DEB_PACKAGES := qemu-system-x86 e2fsprogs busybox-static cpio
# tests/house/format.sh checks the tree against .clang-format.
HOUSE_DEB_PACKAGES := clang-format
deps:
	$(Q)tools/deps.sh $(DEB_PACKAGES) $(GUEST_LINUX_DEB_PACKAGES) $(FUZZ_DEB_PACKAGES) \
		$(HOUSE_DEB_PACKAGES)
	$(Q)tools/deps.sh --no-install-recommends $(SANDBOX_DEB_PACKAGES)

# The README's main job: build what is missing and boot the default Linux guest.
.PHONY: run
run: deps $(BUILD)/ember guest-linux
	$(Q)$(WITH_KVM_TERMINAL) $(BUILD)/ember run configs/default.lua

# libFuzzer harnesses, one per parser of outside input (clang): `make fuzz` builds them into
# build/fuzz/; `make test-fuzz-corpus` replays each over its seed corpus; `make test-fuzz`
# does that, then fuzzes each for FUZZ_SECONDS, one at a time (tests/fuzz/run.sh). By hand:
#   build/fuzz/fuzz_http -max_total_time=60 -dict=tests/fuzz/http.dict tests/fuzz/corpus/http
# fuzz_NAME is tests/fuzz/fuzz_NAME.c linked with the real code under test
# (fuzz_NAME_SRCS, as its unit test links it; fakes only for the environment) and
# fuzz_NAME_LIBS. Seeds: tests/fuzz/corpus/NAME; dictionary, if any: tests/fuzz/NAME.dict.
FUZZ_CC ?= clang
FUZZ_DEB_PACKAGES := clang libclang-rt-dev
FUZZ_SECONDS ?= 10
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=c11 -D_GNU_SOURCE -Iinclude -Itests/unit $(WARN) \
	$(shell pkg-config --cflags libcjson 2>/dev/null)
FUZZERS := http api_json mmds state_file uffd_json virtq virtio_block balloon vsock \
	device_config vm_info memory_layout x86_state \
	vsock_connect kernel_loader virtio_state emulate_decode seccomp_file cpu_template \
	working_set net_rx virtio_mem
FUZZ_API_WRAP := -Wl,--wrap=log_set_file,--wrap=metrics_open
fuzz_http_SRCS := $(test_api_router_SRCS) src/api/conn.c src/api/http.c tests/fuzz/api_common.c
fuzz_http_LIBS := $(FUZZ_API_WRAP) -lcjson -lhttp_parser -lev -lm $(URING_LIB)
fuzz_api_json_SRCS := $(test_api_router_SRCS) tests/fuzz/api_common.c
fuzz_api_json_LIBS := $(FUZZ_API_WRAP) -lcjson -lev -lm $(URING_LIB)
fuzz_mmds_SRCS := $(MMDS_SRCS)
fuzz_mmds_LIBS := -lcjson -lhttp_parser
fuzz_state_file_SRCS := $(STATE_FILE_SRCS) src/snapshot/snapshot_id.c
fuzz_uffd_json_SRCS := src/snapshot/uffd_handshake.c
fuzz_uffd_json_LIBS := -lcjson
fuzz_cpu_template_SRCS := $(test_cpu_template_SRCS)
fuzz_cpu_template_LIBS := -lcjson
fuzz_virtq_SRCS := src/devices/virtio/queue.c src/kvm/guest_mem.c
fuzz_net_rx_SRCS := src/devices/net/net_rx.c src/devices/virtio/queue.c src/kvm/guest_mem.c
fuzz_net_rx_FLAGS := -Isrc/devices/net
fuzz_virtio_block_SRCS := src/devices/block/block_req.c src/devices/virtio/queue.c \
	src/kvm/guest_mem.c
fuzz_balloon_SRCS := src/devices/balloon/balloon_parse.c src/devices/balloon/balloon_memory.c \
	src/kvm/guest_mem.c
fuzz_vsock_SRCS := $(test_vsock_packets_SRCS)
fuzz_vsock_LIBS := -lev
fuzz_vsock_connect_SRCS := src/devices/vsock/vsock_proto.c
fuzz_kernel_loader_SRCS := src/arch/x86_64/kernel_loader.c src/arch/x86_64/zero_page.c \
	src/kvm/guest_mem.c
fuzz_virtio_state_SRCS := $(test_virtio_rng_SRCS) src/devices/balloon/balloon.c \
	src/devices/balloon/balloon_parse.c src/devices/balloon/balloon_persist.c \
	src/devices/balloon/balloon_queues.c src/devices/balloon/balloon_memory.c
fuzz_virtio_state_LIBS := -lev -lcmocka
fuzz_virtio_mem_SRCS := $(test_virtio_mem_SRCS)
fuzz_virtio_mem_LIBS := -lev -lcmocka
fuzz_emulate_decode_SRCS := src/arch/x86_64/emulate_decode.c
fuzz_working_set_SRCS := tools/working_set.c
fuzz_working_set_FLAGS := -Itools
fuzz_seccomp_file_SRCS := $(SECCOMP_FILE_SRCS)
fuzz_seccomp_file_LIBS := -lcjson -lseccomp
# Single state file sections, each harness fed one section (tests/fuzz/one_section.c).
FUZZ_SECTION_SRCS := tests/fuzz/one_section.c $(SNAPSHOT_CHECK_SRCS)
fuzz_device_config_SRCS := $(FUZZ_SECTION_SRCS)
fuzz_vm_info_SRCS := $(FUZZ_SECTION_SRCS)
fuzz_memory_layout_SRCS := $(FUZZ_SECTION_SRCS)
fuzz_x86_state_SRCS := $(FUZZ_SECTION_SRCS)

FUZZ_HEADERS = $(wildcard include/ember/*.h src/*/*.h src/*/*/*.h tests/unit/*.h tools/*.h)
define fuzz_harness # $(1) = name
$(BUILD)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $$(fuzz_$(1)_SRCS) $$(FUZZ_HEADERS)
	@mkdir -p $$(dir $$@)
	@echo "  FUZZ    $$@"
	$$(Q)$$(FUZZ_CC) $$(FUZZ_FLAGS) $$(fuzz_$(1)_FLAGS) -o $$@ $$(filter %.c,$$^) \
		$$(fuzz_$(1)_LIBS)
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_harness,$(f))))
FUZZ_BINS = $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZERS))

# `make fuzz-seeds`: the section harnesses built as plain programs (FUZZ_SEED_MAIN, no
# libFuzzer) write their corpora from sections the real save functions produce.
FUZZ_SEEDED := device_config vm_info memory_layout x86_state
define fuzz_seed # $(1) = name
$(BUILD)/fuzz/seed_$(1): tests/fuzz/fuzz_$(1).c $$(fuzz_$(1)_SRCS) $$(FUZZ_HEADERS)
	@mkdir -p $$(dir $$@)
	@echo "  SEED    $$@"
	$$(Q)$$(CC) -DFUZZ_SEED_MAIN $$(ALL_CFLAGS) -o $$@ $$(filter %.c,$$^)
endef
$(foreach f,$(FUZZ_SEEDED),$(eval $(call fuzz_seed,$(f))))

.PHONY: fuzz-seeds
fuzz-seeds: $(patsubst %,$(BUILD)/fuzz/seed_%,$(FUZZ_SEEDED))
	$(Q)for f in $(FUZZ_SEEDED); do mkdir -p tests/fuzz/corpus/$$f && \
		$(BUILD)/fuzz/seed_$$f tests/fuzz/corpus/$$f || exit 1; done

.PHONY: fuzz test-fuzz test-fuzz-corpus
fuzz: $(FUZZ_BINS)
test-fuzz-corpus: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh replay $(BUILD)/fuzz 0 $(FUZZERS)
test-fuzz: test-fuzz-corpus
	$(Q)tests/fuzz/run.sh fuzz $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZERS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)

-include $(shell find $(BUILD) $(SAN_BUILD) -name '*.d' 2>/dev/null)
