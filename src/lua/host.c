/* Lua host: scripts and callbacks run as coroutines on the control loop; waits yield
 * (host_wait.c), events queue (events.c). */
#include "ember/lua_host.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "ember/console.h"
#include "ember/log.h"
#include "ember/vm.h"
#include "ember/vm_exit.h"
#include "internal.h"

int luaopen_ember(lua_State *L);

struct task *task_of(lua_State *L)
{
	return *(struct task **)lua_getextraspace(L);
}

struct lua_host *host_get(lua_State *L)
{
	struct lua_host *h;

	lua_getfield(L, LUA_REGISTRYINDEX, "ember.host");
	h = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return h;
}

static void set_task(lua_State *co, struct task *t)
{
	*(struct task **)lua_getextraspace(co) = t;
}

static bool is_config_error(lua_State *L, int idx)
{
	bool yes;

	if (!lua_getmetatable(L, idx))
		return false;
	luaL_getmetatable(L, CONFIG_ERROR_META);
	yes = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return yes;
}

static void finish_main(struct lua_host *h, int status)
{
	h->main_done = true;
	h->status = status;
	ev_break(h->loop, EVBREAK_ALL);
}

/* The main script returned: a VM it returned runs until it exits. */
static void main_returned(struct lua_host *h, lua_State *co, int nres)
{
	struct lvm *v = nres > 0 ? luaL_testudata(co, -nres, LVM_META) : NULL;
	char err[512];

	if (!v || !v->vm) {
		finish_main(h, EMBER_EXIT_OK);
		return;
	}
	if (vm_state(v->vm) == VM_CONFIGURED && vm_start(v->vm, err, sizeof(err))) {
		fprintf(stderr, "ember: %s\n", err);
		finish_main(h, EMBER_EXIT_ERROR);
		return;
	}
	if (vm_state(v->vm) == VM_EXITED) {
		finish_main(h, vm_exit_status(v->vm));
		return;
	}
	h->main_vm = v;
	if (h->vm_hook)
		h->vm_hook(v->vm, h->vm_hook_opaque);
}

static void task_end(struct task *t)
{
	luaL_unref(t->host->L, LUA_REGISTRYINDEX, t->ref);
	free(t);
}

static void report_error(struct lua_host *h, struct task *t)
{
	lua_State *co = t->co;
	const char *msg;

	if (is_config_error(co, -1)) {
		lua_getfield(co, -1, "message");
		fprintf(stderr, "ember: %s\n", lua_tostring(co, -1));
		if (t->is_main)
			finish_main(h, EMBER_EXIT_USAGE);
		return;
	}
	msg = luaL_tolstring(co, -1, NULL);
	luaL_traceback(co, co, msg, 0);
	if (t->is_main) {
		fprintf(stderr, "ember: %s\n", lua_tostring(co, -1));
		finish_main(h, EMBER_EXIT_ERROR);
	} else {
		log_err("lua: %s", lua_tostring(co, -1));
	}
}

bool host_resume(struct lua_host *h, struct task *t, int nargs)
{
	int nres = 0;
	int ret = lua_resume(t->co, h->L, nargs, &nres);

	if (ret == LUA_YIELD)
		return false; /* parked in a waiter */
	if (t->done) {
		t->done(t->done_opaque, t->co, ret, nres);
	} else if (ret == LUA_OK) {
		if (t->is_main)
			main_returned(h, t->co, nres);
	} else {
		report_error(h, t);
	}
	task_end(t);
	return true;
}

static struct task *task_new(struct lua_host *h, bool is_main)
{
	struct task *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->host = h;
	t->is_main = is_main;
	t->co = lua_newthread(h->L);
	t->ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
	set_task(t->co, t);
	return t;
}

void host_spawn(struct lua_host *h, int nargs, const char *what)
{
	struct task *t = task_new(h, false);

	if (!t) {
		lua_pop(h->L, nargs + 1);
		log_err("lua: out of memory starting %s", what);
		return;
	}
	lua_xmove(h->L, t->co, nargs + 1);
	host_resume(h, t, nargs);
}

struct task *host_run_chunk(struct lua_host *h, task_done_fn done, void *opaque)
{
	struct task *t = task_new(h, false);

	if (!t) {
		lua_pop(h->L, 1);
		return NULL;
	}
	t->done = done;
	t->done_opaque = opaque;
	lua_xmove(h->L, t->co, 1);
	return host_resume(h, t, 0) ? NULL : t;
}

/* ---- host ---- */

struct lua_host *lua_host_new(struct ev_loop *loop, char *err, size_t errlen)
{
	struct lua_host *h = calloc(1, sizeof(*h));

	if (!h || !(h->L = luaL_newstate())) {
		free(h);
		snprintf(err, errlen, "lua: out of memory");
		return NULL;
	}
	h->loop = loop;
	h->vms.next = h->vms.prev = &h->vms;
	host_events_init(h);
	host_waiters_init(h);
	luaL_openlibs(h->L);
	lua_pushlightuserdata(h->L, h);
	lua_setfield(h->L, LUA_REGISTRYINDEX, "ember.host");
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
	ev_timer_stop(h->loop, &h->recheck);
	/* Waiting coroutines are dropped with the state; their VMs are freed by __gc. */
	while (h->waiters.next != &h->waiters) {
		struct waiter *w = h->waiters.next;
		ev_timer_stop(h->loop, &w->timer);
		host_waiter_unlink(w);
		luaL_unref(h->L, LUA_REGISTRYINDEX, w->task->ref);
		free(w->task);
		free(w->pattern);
		free(w);
	}
	lua_close(h->L);
	free(h);
}

void host_cancel(struct lua_host *h, struct task *t)
{
	for (struct waiter *w = h->waiters.next; w != &h->waiters; w = w->next) {
		if (w->task != t)
			continue;
		ev_timer_stop(h->loop, &w->timer);
		host_waiter_unlink(w);
		if (w->kind == WAIT_ATTACH)
			vm_console_detach(w->vm->vm);
		free(w->pattern);
		free(w);
		break;
	}
	task_end(t); /* the coroutine is collected with whatever it held */
}

void host_finish(struct lua_host *h, int status)
{
	if (!h->main_done)
		finish_main(h, status);
}

void lua_host_set_vm_hook(struct lua_host *h, void (*fn)(struct vm *vm, void *opaque),
	void *opaque)
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
	if (!h->main_done)
		finish_main(h, 128 + signo);
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
	if (luaL_loadfile(t->co, path) != LUA_OK) {
		fprintf(stderr, "ember: %s\n", lua_tostring(t->co, -1));
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

