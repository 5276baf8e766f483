/* Tasks: the main script, callbacks and REPL lines each run as a coroutine on the control
 * loop. Resuming one, and what its end means (the main script's result ends the run or
 * hands its VM on; an error is reported). Below the waits and events that resume tasks. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "ember/log.h"
#include "ember/vm.h"
#include "ember/vm_exit.h"
#include "internal.h"

struct task *task_of(lua_State *L)
{
	return *(struct task **)lua_getextraspace(L);
}

struct lua_host *host_get(lua_State *L)
{
	struct lua_host *h;

	lua_getfield(L, LUA_REGISTRYINDEX, HOST_KEY);
	h = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return h;
}

static void set_task(lua_State *co, struct task *t)
{
	*(struct task **)lua_getextraspace(co) = t;
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

void task_end(struct task *t)
{
	luaL_unref(t->host->L, LUA_REGISTRYINDEX, t->ref);
	free(t);
}

static void report_error(struct lua_host *h, struct task *t)
{
	lua_State *co = t->co;
	const char *msg;

	if (config_error_is(co, -1)) {
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

struct task *task_new(struct lua_host *h, bool is_main)
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

void host_finish(struct lua_host *h, int status)
{
	if (!h->main_done)
		finish_main(h, status);
}
