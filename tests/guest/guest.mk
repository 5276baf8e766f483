# ember test guest: freestanding x86_64 ELF built with $(CC); included by the top Makefile.
#
# Needs BUILD (output root) and CC from the includer. Defines GUEST_ELF and its rules; the
# includer's default goal is left as it was, wherever this file is included.

guest_default_goal := $(.DEFAULT_GOAL)

GUEST_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
GUEST_ELF := $(BUILD)/guest/ember-test-guest

GUEST_SRCS := \
	$(GUEST_DIR)/entry.S \
	$(GUEST_DIR)/fault.c \
	$(GUEST_DIR)/serial.c \
	$(GUEST_DIR)/boot.c \
	$(GUEST_DIR)/work.c \
	$(GUEST_DIR)/lib.c \
	$(GUEST_DIR)/main.c \
	$(GUEST_DIR)/virtio.c \
	$(GUEST_DIR)/cmd_virtio.c \
	$(GUEST_DIR)/cmd_block.c \
	$(GUEST_DIR)/cmd_net.c \
	$(GUEST_DIR)/cmd_vsock.c \
	$(GUEST_DIR)/cmd_balloon.c

GUEST_OBJS := $(patsubst $(GUEST_DIR)/%,$(BUILD)/guest/%.o,$(GUEST_SRCS))

# No libc, no FPU/SSE state (nothing sets it up), no red zone (the kernel part shares
# the code), absolute addresses (linked at 1 MiB, identity-mapped).
GUEST_CFLAGS := \
	-std=gnu11 \
	-O2 \
	-ffreestanding \
	-fno-pic \
	-fno-pie \
	-fno-stack-protector \
	-fno-asynchronous-unwind-tables \
	-mno-red-zone \
	-mgeneral-regs-only \
	-mcmodel=small \
	-Wall \
	-Wextra \
	-Wshadow \
	-Wmissing-prototypes \
	-Wstrict-prototypes \
	-Wvla \
	-Werror \
	-I$(GUEST_DIR) \
	-I$(GUEST_DIR)/../../include \
	-MMD \
	-MP

# -static alone gives an ET_EXEC with gcc and clang (clang warns about -no-pie).
GUEST_LDFLAGS := \
	-nostdlib \
	-static \
	-Wl,--build-id=none \
	-Wl,-z,max-page-size=4096 \
	-Wl,-T,$(GUEST_DIR)/guest.ld

GUEST_Q := $(if $(filter 1,$(V)),,@)

$(GUEST_ELF): $(GUEST_OBJS) $(GUEST_DIR)/guest.ld $(GUEST_DIR)/guest.mk
	@mkdir -p $(dir $@)
	$(if $(GUEST_Q),@echo "  LD      $@")
	$(GUEST_Q)$(CC) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

$(BUILD)/guest/%.c.o: $(GUEST_DIR)/%.c $(GUEST_DIR)/guest.mk
	@mkdir -p $(dir $@)
	$(if $(GUEST_Q),@echo "  CC      $@")
	$(GUEST_Q)$(CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/guest/%.S.o: $(GUEST_DIR)/%.S $(GUEST_DIR)/guest.mk
	@mkdir -p $(dir $@)
	$(if $(GUEST_Q),@echo "  AS      $@")
	$(GUEST_Q)$(CC) $(GUEST_CFLAGS) -c -o $@ $<

-include $(GUEST_OBJS:.o=.d)

.DEFAULT_GOAL := $(guest_default_goal)
