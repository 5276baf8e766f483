/* The VM's lifecycle for Lua: start, pause, resume, stop, snapshot, ctrl_alt_del; its
 * state and exit; waiting for it (vm:wait, vm:wait_for) and talking to its console. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ember/snapshot.h"
#include "ember/vm.h"
#include "internal.h"

static int m_start(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	char err[512];
	int ret = vm_start(v->vm, err, sizeof(err));

	if (!ret)
		lvm_keep_alive(L, v, 1);
	return push_result(L, ret, err);
}

static int m_pause(lua_State *L)
{
	char err[256];

	return push_result(L, vm_pause(lvm_check(L, 1)->vm, err, sizeof(err)), err);
}

static int m_resume(lua_State *L)
{
	char err[256];

	return push_result(L, vm_resume(lvm_check(L, 1)->vm, err, sizeof(err)), err);
}

static int m_stop(lua_State *L)
{
	vm_stop(lvm_check(L, 1)->vm, VM_EXIT_STOPPED, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static int m_state(lua_State *L)
{
	lua_pushstring(L, vm_state_name(vm_state(lvm_check(L, 1)->vm)));
	return 1;
}

static int m_exit(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *detail;
	enum vm_exit_reason why = vm_exit_reason(v->vm, &detail);

	if (why == VM_EXIT_NONE)
		return 0;
	lua_pushstring(L, vm_exit_reason_name(why));
	lua_pushinteger(L, vm_exit_status(v->vm));
	lua_pushstring(L, detail);
	return 3;
}

static struct waiter *waiter_new(lua_State *L, struct lvm *v, enum wait_kind kind, int tidx)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		luaL_error(L, "out of memory");
	w->kind = kind;
	w->vm = v;
	w->prev = w->next = w;
	if (!lua_isnoneornil(L, tidx)) {
		w->timeout = luaL_checknumber(L, tidx);
		w->timed = true;
	}
	return w;
}

static int m_wait(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);

	if (!lua_isnoneornil(L, 2))
		luaL_checknumber(L, 2);
	if (vm_state(v->vm) == VM_EXITED)
		return m_exit(L);
	if (vm_state(v->vm) == VM_CONFIGURED)
		return push_fail(L, "cannot wait: the vm is not started");
	return host_wait(L, waiter_new(L, v, WAIT_EXIT, 2));
}

static int m_wait_for(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *pattern = luaL_checkstring(L, 2);
	struct waiter *w;
	double timeout = luaL_optnumber(L, 3, 30);

	if (vm_state(v->vm) == VM_CONFIGURED || vm_state(v->vm) == VM_EXITED)
		return push_fail(L, "cannot wait for console output: the vm is not running");
	lua_settop(L, 3);
	lua_pushnumber(L, timeout);
	lua_replace(L, 3);
	w = waiter_new(L, v, WAIT_CONSOLE, 3);
	w->pattern = strdup(pattern);
	if (!w->pattern) {
		free(w);
		return luaL_error(L, "out of memory");
	}
	return host_wait(L, w);
}

static int m_send(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);

	vm_console_send(v->vm, (const uint8_t *)s, len);
	lua_pushboolean(L, 1);
	return 1;
}

/* vm:console_since(pos) -> text, newpos: console output from stream offset pos on, for
 * readers with their own position (policies). pos nil: start at the current end. */
static int m_console_since(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	uint64_t pos;
	size_t len;
	const char *text;

	if (lua_isnoneornil(L, 2)) {
		lua_pushliteral(L, "");
		lua_pushinteger(L, (lua_Integer)vm_console_end(v->vm));
		return 2;
	}
	pos = (uint64_t)luaL_checkinteger(L, 2);
	text = vm_console_since(v->vm, &pos, &len);
	lua_pushlstring(L, text, len);
	lua_pushinteger(L, (lua_Integer)(pos + len));
	return 2;
}

/* vm:snapshot { state = PATH, mem = PATH, type = "full" | "diff" } */
static int m_snapshot(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct snapshot_params p = { 0 };
	const char *type;
	char err[512];

	luaL_checktype(L, 2, LUA_TTABLE);
	lua_getfield(L, 2, "state");
	p.state_path = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 2, "mem");
	p.mem_path = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 2, "type");
	type = luaL_optstring(L, -1, "full");
	if (!p.state_path || !p.mem_path)
		return luaL_error(L, "snapshot: needs state and mem paths");
	if (strcmp(type, "full") && strcmp(type, "diff"))
		return luaL_error(L, "snapshot: type '%s' is not full or diff", type);
	p.type = strcmp(type, "diff") ? SNAPSHOT_FULL : SNAPSHOT_DIFF;
	return push_result(L, vm_snapshot(v->vm, &p, err, sizeof(err)), err);
}

static int m_ctrl_alt_del(lua_State *L)
{
	if (vm_send_ctrl_alt_del(lvm_check(L, 1)->vm))
		return push_fail(L, "ctrl_alt_del: the vm is not running");
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg methods[] = {
	{ "start", m_start },
	{ "pause", m_pause },
	{ "resume", m_resume },
	{ "stop", m_stop },
	{ "state", m_state },
	{ "exit", m_exit },
	{ "wait", m_wait },
	{ "wait_for", m_wait_for },
	{ "send", m_send },
	{ "console_since", m_console_since },
	{ "snapshot", m_snapshot },
	{ "ctrl_alt_del", m_ctrl_alt_del },
	{ NULL, NULL },
};

void lvm_lifecycle_open(lua_State *L)
{
	luaL_setfuncs(L, methods, 0);
}
