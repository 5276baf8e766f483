/* The Lua runtime of one ember process: the `ember` module, scripts run as coroutines on
 * the control loop, and the VM objects they create. Control thread only. */
#ifndef EMBER_LUA_HOST_H
#define EMBER_LUA_HOST_H

#include <stddef.h>

struct ev_loop;
struct lua_host;
struct mmds;
struct vm;

/* A host whose VMs (ember.vm, ember.restore) answer MMDS from `mmds` (not owned: it
 * outlives the host; NULL: a definition with mmds is refused when its VM is built). NULL
 * with err if memory ran out. */
struct lua_host *lua_host_new(struct ev_loop *loop, struct mmds *mmds, char *err, size_t errlen);
/* Stops every VM the scripts created, closes the Lua state. NULL is a no-op. */
void lua_host_free(struct lua_host *h);

/* Run `path` as the main script with `arg` set to argv[0..argc). A script that returns a
 * VM (ember.vm{...}) has it started and waited for. Runs the loop until the script and
 * that VM are done. Returns the process exit status (see vm_exit.h): a definition error
 * or a script that does not load is EMBER_EXIT_USAGE, with one line on stderr. */
int lua_host_run_file(struct lua_host *h, const char *path, int argc, char **argv);

/* Own `vm` (already built, e.g. restored) and run the loop until it exits; returns the
 * exit status that tells how it ended. */
int lua_host_run_vm(struct lua_host *h, struct vm *vm);

/* Be told about the main VM (the one the main script returned, or lua_host_run_vm's):
 * fn(vm) once it runs, fn(NULL) when it has exited, before Lua may free it. `ember run
 * FILE.lua --api-sock PATH` hands it to the API this way. fn NULL: no hook. */
void lua_host_set_vm_hook(struct lua_host *h, void (*fn)(struct vm *vm, void *opaque),
	void *opaque);

/* The REPL (`ember repl`): run the definition `path` (its VM is started and bound to
 * `vm`), or attach to the VM served on the API socket `api_sock` (`vm` is an
 * ember.connect client), or neither; then read Lua lines from the terminal on the loop
 * until Ctrl-D (status 0, the VMs it made are stopped) or SIGTERM. SIGINT clears the line
 * instead of stopping the VMs. A definition that fails is reported as `run` does. */
int lua_host_repl(struct lua_host *h, const char *path, const char *api_sock);

/* Stop every VM on SIGINT/SIGTERM; the running script ends with status 128 + signo. */
void lua_host_signal(struct lua_host *h, int signo);

#endif
