/* The Firecracker-compatible REST API: `struct api` holds what the API configures and the
 * VM it drives; `struct api_server` serves it as HTTP/1.1 on a Unix socket from the
 * control loop, without ever blocking it. Control thread only.
 *
 * The API knows nothing of KVM: its routes call vm.h, snapshot.h and config.h, the same
 * functions Lua calls. Paths, fields, defaults, status codes and error texts follow
 * Firecracker's API (firecracker-facts.md §1); every error is a 4xx answer with a
 * {"fault_message": "..."} body. */
#ifndef EMBER_API_H
#define EMBER_API_H

#include <stdbool.h>
#include <stddef.h>

struct api;
struct api_server;
struct ev_loop;
struct mmds;
struct vm;

/* Events for the API's owner (main). */
struct api_hooks {
	/* A VM the API created (InstanceStart, snapshot load) reached VM_EXITED. */
	void (*vm_exited)(struct vm *vm, void *opaque);
	void *opaque;
};

/* A fresh API: no VM, Firecracker's defaults (1 vCPU, 128 MiB). `hooks` is copied and may
 * be NULL. `mmds` is the store /mmds fills and the API's VMs answer from: required, not
 * owned (the caller frees it after api_free). */
struct api *api_new(struct ev_loop *loop, const struct api_hooks *hooks, struct mmds *mmds,
	char *err, size_t errlen);
/* Stops the metrics timer and frees a VM the API created. NULL is a no-op. */
void api_free(struct api *api);

/* Serve a VM that someone else created and owns (a Lua definition), or NULL to forget it;
 * the owner calls api_set_vm(api, NULL) before it frees the VM. With a VM set, the API
 * answers as Firecracker does after boot: pre-boot calls are refused. */
void api_set_vm(struct api *api, struct vm *vm);
/* The VM the API serves (its own or one set), or NULL before boot. */
struct vm *api_vm(const struct api *api);

/* One request, as the server hands it over: method ("GET", "PUT", ...), the request
 * target (path, or absolute URL), and the body (`len` bytes, NUL-terminated; NULL if
 * none). `status` is 2xx or 4xx/5xx; `body` (malloc'd, may be NULL) is the JSON answer. */
struct api_response {
	int status;
	char *body;
	bool deprecation; /* a deprecated field was used: answer with a Deprecation header */
};
void api_handle(struct api *api, const char *method, const char *target, const char *body,
	size_t len, struct api_response *resp);
void api_response_deinit(struct api_response *resp);

/* Configure from a Firecracker JSON configuration file (boot-source, machine-config,
 * drives, ...), in Firecracker's order, then start the VM. The message names the file and
 * the section: "vm.json: machine-config: ...". -EINVAL for a bad file (usage error),
 * another -errno if the VM could not start. */
__attribute__((warn_unused_result)) int api_load_config_file(struct api *api, const char *path,
	char *err, size_t errlen);

/* Listen on the Unix socket `path`. An existing path is refused unless it is a stale
 * socket (nobody accepts on it), which is then replaced. */
struct api_server *api_server_new(struct ev_loop *loop, struct api *api, const char *path,
	char *err, size_t errlen);
/* Close every connection and the socket, and remove the socket path if it is still the
 * one this server created. NULL is a no-op. */
void api_server_free(struct api_server *srv);

/* `ember --api-sock PATH [--config-file FILE]` (either may be NULL, not both): serve the
 * API over `mmds` (as api_new), boot from the file if given, and run until the VM exits or
 * SIGINT/SIGTERM. Prints errors on stderr; returns the process exit status (vm_exit.h). */
int api_run(const char *sock_path, const char *config_file, struct mmds *mmds);

/* The instance id GET / shows (--id; "anonymous-instance" without one). The string must
 * outlive the process's API (argv does). */
void api_set_instance_id(const char *id);
/* --firecracker-version-compat: the version GET /version (firecracker_version) and GET /
 * (vmm_version) show instead of ember's, for clients that want a Firecracker version. The
 * string must outlive the API. */
void api_set_version_compat(const char *version);
/* --http-api-max-payload-size: the largest request body the API reads (default 51200
 * bytes, Firecracker's); larger ones get 400. Before the server starts. */
void api_set_max_payload(size_t bytes);

#endif
