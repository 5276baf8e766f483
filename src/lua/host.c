/* The Lua host, the top of src/lua (ember/lua_host.h): makes the Lua state with the
 * `ember` module (module.c) preloaded, runs a script, a VM or the loop until the run ends
 * (task.c), and stops the VMs on a signal. */
#include "ember/lua_host.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "ember/vm.h"
#include "ember/vm_exit.h"
#include "internal.h"

int luaopen_ember(lua_State *L);

struct lua_host *lua_host_new(struct ev_loop *loop, struct mmds *mmds, char *err, size_t errlen)
{
	struct lua_host *h = calloc(1, sizeof(*h));

	if (!h || !(h->L = luaL_newstate())) {
		free(h);
		snprintf(err, errlen, "lua: out of memory");
		return NULL;
	}
	h->loop = loop;
	h->mmds = mmds;
	h->vms.next = h->vms.prev = &h->vms;
	host_events_init(h);
	host_waiters_init(h);
	luaL_openlibs(h->L);
	lua_pushlightuserdata(h->L, h);
	lua_setfield(h->L, LUA_REGISTRYINDEX, HOST_KEY);
	luaL_getsubtable(h->L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(h->L, luaopen_ember);
	lua_setfield(h->L, -2, "ember");
	lua_pop(h->L, 1);
	return h;
}

void lua_host_free(struct lua_host *h)
{
	if (!h)
		return;
	host_events_drop(h);
	host_waiters_drop(h);
	lua_close(h->L);
	free(h);
}

void lua_host_set_vm_hook(struct lua_host *h, void (*fn)(struct vm *vm, void *opaque), void *opaque)
{
	h->vm_hook = fn;
	h->vm_hook_opaque = opaque;
}

void lua_host_signal(struct lua_host *h, int signo)
{
	if (signo == SIGINT && h->interrupt) {
		h->interrupt(h->hook_opaque); /* the REPL: Ctrl-C clears the line */
		return;
	}
	h->signo = signo;
	for (struct lvm *v = h->vms.next; v != &h->vms; v = v->next)
		vm_stop(v->vm, VM_EXIT_SIGNAL, signo);
	host_finish(h, 128 + signo);
}

/* `ember` is a global in scripts and definitions, as well as require "ember". */
int host_load_ember(struct lua_host *h)
{
	lua_State *L = h->L;

	lua_getglobal(L, "require");
	lua_pushstring(L, "ember");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		fprintf(stderr, "ember: cannot load the ember module: %s\n", lua_tostring(L, -1));
		lua_pop(L, 1);
		return -1;
	}
	lua_setglobal(L, "ember");
	return 0;
}

int host_run_loop(struct lua_host *h)
{
	while (!h->main_done)
		ev_run(h->loop, EVRUN_ONCE);
	/* Events of the VM that ended the run (on_exit...) still reach their handlers. */
	host_deliver_events(h);
	return h->status;
}

int lua_host_run_file(struct lua_host *h, const char *path, int argc, char **argv)
{
	lua_State *L = h->L;
	struct task *t;

	lua_createtable(L, argc, 0);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	lua_setglobal(L, "arg");
	if (host_load_ember(h))
		return EMBER_EXIT_ERROR;
	t = task_new(h, true);
	if (!t)
		return EMBER_EXIT_ERROR;
	/* Text only: a binary chunk is Lua bytecode, which the VM does not check. */
	if (luaL_loadfilex(t->co, path, "t") != LUA_OK) {
		const char *msg = lua_tostring(t->co, -1);

		/* Lua names the file in most of its messages, not in the binary chunk's. */
		fprintf(stderr, "ember: %s%s%s\n", strstr(msg, path) ? "" : path,
			strstr(msg, path) ? "" : ": ", msg);
		task_end(t);
		return EMBER_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++)
		lua_pushstring(t->co, argv[i]);
	host_resume(h, t, argc > 1 ? argc - 1 : 0);
	return host_run_loop(h);
}

int lua_host_run_vm(struct lua_host *h, struct vm *vm)
{
	struct lvm *v;

	if (host_load_ember(h)) {
		vm_free(vm);
		return EMBER_EXIT_ERROR;
	}
	v = lvm_wrap(h->L, vm, 0);

	lua_pop(h->L, 1); /* lvm_wrap keeps a running or paused VM alive by itself */
	if (vm_state(vm) == VM_EXITED)
		return vm_exit_status(vm);
	h->main_vm = v;
	if (h->vm_hook)
		h->vm_hook(v->vm, h->vm_hook_opaque);
	return host_run_loop(h);
}
