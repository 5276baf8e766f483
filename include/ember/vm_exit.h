/* Why a VM ended, and the process exit status that says so. */
#ifndef EMBER_VM_EXIT_H
#define EMBER_VM_EXIT_H

enum vm_exit_reason {
	VM_EXIT_NONE = 0,
	VM_EXIT_POWEROFF, /* the guest powered off: status 0 */
	VM_EXIT_STOPPED,  /* stopped by its owner (Lua, API): status 0 */
	VM_EXIT_RESET,    /* the guest reset itself (reboot, triple fault): status 3 */
	VM_EXIT_ERROR,    /* a vCPU or device failed: status 1 */
	VM_EXIT_SIGNAL,   /* SIGINT / SIGTERM: status 128 + signal */
};

/* Process exit statuses. */
#define EMBER_EXIT_OK 0
#define EMBER_EXIT_ERROR 1
#define EMBER_EXIT_USAGE 2 /* bad command line or machine definition */
#define EMBER_EXIT_RESET 3
#define EMBER_EXIT_BAD_CONFIG 152 /* --config-file does not describe a VM (Firecracker's) */

const char *vm_exit_reason_name(enum vm_exit_reason reason);

#endif
